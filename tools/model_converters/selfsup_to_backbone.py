"""Extract the backbone of a self-supervised checkpoint for transfer.

    python tools/model_converters/selfsup_to_backbone.py SRC DST \
        [--out-prefix none|backbone.] [--src-prefix backbone.] [--verify CONFIG]
        [--allow-missing PATTERN ...]
    python tools/model_converters/selfsup_to_backbone.py SRC --list-prefixes

The program is ``mm_instdisc.apis.convert.main`` (``mm-instdisc-convert``;
``--help`` describes it).
"""
import os.path as osp
import sys

# work from an uninstalled checkout too
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(ROOT, 'mm_instdisc')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

if __name__ == '__main__':
    from mm_instdisc.apis.convert import main
    main()
