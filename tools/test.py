"""Evaluate a checkpoint with a config's test loop, like mmpretrain's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.json]

The program is ``mm_instdisc.apis.test.main`` (``mm-instdisc-test``).
"""
import _common  # noqa: F401  (sys.path, compat patches)

if __name__ == '__main__':
    from mm_instdisc.apis.test import main
    main()
