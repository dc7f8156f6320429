"""Imported first by the scripts in tools/: puts the checkout on
``sys.path`` (so that they run from an uninstalled checkout too) and applies
mm_instdisc's compatibility patches for mmengine. The programs themselves
live in ``mm_instdisc.apis``."""
import os.path as osp
import sys

# work from an uninstalled checkout too (not from a wheel's .mim/tools,
# whose parent is the package itself)
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(ROOT, 'mm_instdisc')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mm_instdisc.utils import apply_compat_patches  # noqa: E402

apply_compat_patches()
