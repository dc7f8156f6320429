"""Extract the backbone of a self-supervised checkpoint for transfer.

    python tools/model_converters/selfsup_to_backbone.py SRC DST \
        [--out-prefix none|backbone.] [--src-prefix backbone.] [--verify CONFIG]
        [--allow-missing PATTERN ...]
    python tools/model_converters/selfsup_to_backbone.py SRC --list-prefixes

SRC is a pretraining checkpoint (NPID, AdCo, ... : backbone.*, neck.*, head.*,
memory bank, negatives, momentum encoder). DST gets only the backbone weights,
as {'state_dict': ..., 'meta': ...}:

  --out-prefix none       conv1.weight, ... (default): load into the backbone
                          itself, or init_cfg=dict(type='Pretrained',
                          checkpoint=DST) with no prefix
  --out-prefix backbone.  backbone.conv1.weight, ...: load_from of a detector /
                          classifier, or init_cfg with prefix='backbone.'

--verify CONFIG builds CONFIG's model.backbone (mmdet registry when the config
has default_scope='mmdet', mmpretrain's otherwise) and fails unless the
weights match it exactly (no missing or unexpected keys, same shapes); a
ViT checkpoint for a ResNet config (or the reverse) is refused with both
architectures and the checkpoint's prefixes named. Without --verify the
architecture found (vit / resnet) is printed and stored in DST's meta.
--list-prefixes prints the module prefixes of SRC with their tensor counts
(e.g. 'backbone.', 'neck.', AdCo's key encoder 'encoder_k.module.0.') and
exits.
--allow-missing PATTERN (fnmatch, e.g. 'ln2.*') lets --verify accept target
keys that pretraining never had and that keep their fresh initialisation:
mmpretrain's ViT with out_type='avg_featmap' (the SplitMask fine-tuning
configs) has a final norm ``ln2`` after pooling that the pretraining ViT
(out_type='raw') lacks.
"""
import argparse
import os.path as osp
from typing import Dict, Iterable, Optional, Sequence

from torch import Tensor

from mm_instdisc.utils.checkpoint import read_checkpoint
from mm_instdisc.utils.selfsup_to_backbone import (backbone_family,
                                                   convert_selfsup_checkpoint,
                                                   get_state_dict,
                                                   list_prefixes,
                                                   verify_backbone)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None); the help
    text is this module's docstring."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('src', help='self-supervised checkpoint (.pth)')
    p.add_argument('dst', nargs='?',
                   help='output file for the backbone weights')
    p.add_argument('--out-prefix', default='none',
                   choices=['none', 'backbone.'],
                   help="prefix of the output keys (default: none)")
    p.add_argument('--src-prefix', default='backbone.',
                   help="module whose weights to keep (default: 'backbone.'; "
                   "e.g. 'encoder_k.module.0.' for the key encoder of AdCo / "
                   'Exemplar; see --list-prefixes)')
    p.add_argument('--list-prefixes', action='store_true',
                   help='print the module prefixes of SRC and exit')
    p.add_argument('--verify', metavar='CONFIG',
                   help="check the weights against CONFIG's model.backbone")
    p.add_argument('--allow-missing', nargs='+', default=[],
                   metavar='PATTERN',
                   help='with --verify: target keys (fnmatch patterns) the '
                   "weights may lack, e.g. 'ln2.*' for a ViT fine-tuned "
                   "with out_type='avg_featmap'")
    return p.parse_args(argv)


def verify(weights: Dict[str, Tensor], config: str, out_prefix: str,
           allow_missing: Iterable[str] = ()) -> None:
    """``--verify CONFIG``: build CONFIG's ``model.backbone`` (mmdet's
    registry for ``default_scope='mmdet'``, mmpretrain's otherwise) and
    check ``weights`` (keys under ``out_prefix``) against it
    (``mm_instdisc.utils.selfsup_to_backbone.verify_backbone``); prints
    the result.

    Raises:
        SystemExit: The weights do not fit (the mismatch, named).
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mm_instdisc.utils import apply_compat_patches
    apply_compat_patches()
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)
    backbone = MODELS.build(backbone_cfg)
    plain = {k[len(out_prefix):]: v for k, v in weights.items()}
    try:
        allowed = verify_backbone(plain, backbone, f'--verify {config}',
                                  backbone_cfg.type, allow_missing)
    except ValueError as e:
        raise SystemExit(str(e))
    print(f'verified: all {len(plain)} tensors match {backbone_cfg.type} of '
          f'{config}' + (f'; {len(allowed)} target keys keep their '
                         f'initialisation: {allowed}' if allowed else ''))


def print_prefixes(src: str) -> None:
    """``--list-prefixes``: print the module prefixes of the checkpoint
    ``src`` with their tensor counts and sizes.

    Raises:
        SystemExit: No such file.
    """
    if not osp.isfile(src):
        raise SystemExit(f'error: checkpoint not found: {src!r}')
    state = get_state_dict(read_checkpoint(src))
    print(f'{src}: {len(state)} tensors')
    for pre, n, numel in list_prefixes(state):
        print(f'  {pre:<40s} {n:5d} tensors  {numel / 1e6:9.3f} M values')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Convert (or ``--list-prefixes``) as the command line ``argv`` says
    (``sys.argv[1:]`` when None).

    Raises:
        SystemExit: Bad arguments or input, or weights that fail
            ``--verify`` (the message).
    """
    args = parse_args(argv)
    if args.list_prefixes:
        print_prefixes(args.src)
        return
    if args.dst is None:
        raise SystemExit('error: DST (the output file) is required unless '
                         '--list-prefixes is given')
    if args.allow_missing and not args.verify:
        raise SystemExit('error: --allow-missing only applies with --verify '
                         'CONFIG')
    out_prefix = '' if args.out_prefix == 'none' else args.out_prefix
    try:
        weights = convert_selfsup_checkpoint(args.src, args.dst,
                                             args.src_prefix, out_prefix)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise SystemExit(f'error: {e}')
    n = sum(v.numel() for v in weights.values())
    arch = backbone_family({k[len(out_prefix):]: v
                            for k, v in weights.items()})
    print(f'wrote {len(weights)} tensors ({n / 1e6:.2f} M values) of '
          f'{args.src_prefix}* to {args.dst} '
          f"(key prefix {out_prefix or 'none'!r}; architecture: {arch})")
    if not args.verify:
        print('not verified against a target config: pass --verify CONFIG '
              'to refuse weights that do not fit its backbone')
    if args.verify:
        verify(weights, args.verify, out_prefix, args.allow_missing)


if __name__ == '__main__':
    main()
