"""Train a model from a config, like mmpretrain's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--minutes M]
    bash tools/dist_train.sh CONFIG NUM_PROCS      # distributed, GPU or CPU

The program is ``mm_instdisc.apis.train.main`` (``mm-instdisc-train``).
"""
import _common  # noqa: F401  (sys.path, compat patches)

if __name__ == '__main__':
    from mm_instdisc.apis.train import main
    main()
