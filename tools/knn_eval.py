"""Weighted kNN evaluation of a checkpoint (NPID protocol).

    python tools/knn_eval.py CONFIG CHECKPOINT [--ks 10 20 100 200] [--temperature 0.07]

The program is ``mm_instdisc.apis.knn_eval.main`` (``mm-instdisc-knn-eval``;
``--help`` describes it).
"""
import _common  # noqa: F401  (sys.path, compat patches)

if __name__ == '__main__':
    from mm_instdisc.apis.knn_eval import main
    main()
