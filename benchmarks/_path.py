"""Imported first by every script in ``benchmarks/``: a script run as
``python benchmarks/<name>.py`` has ``benchmarks/`` on ``sys.path``, not the
checkout, so this puts the checkout first, where ``benchmarks.lib`` (and an
uninstalled ``mm_instdisc``, as on the GPU machine) import from."""
import os.path as osp
import sys

#: The checkout (``benchmarks/``, ``tools/``, ``configs/``, ``data/``).
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
