"""Extract the backbone of a self-supervised checkpoint for transfer.

    python tools/model_converters/selfsup_to_backbone.py SRC DST \
        [--out-prefix none|backbone.] [--src-prefix backbone.] [--verify CONFIG]
        [--allow-missing PATTERN ...]

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
weights match it exactly (no missing or unexpected keys, same shapes).
--allow-missing PATTERN (fnmatch, e.g. 'ln2.*') lets --verify accept target
keys that pretraining never had and that keep their fresh initialisation:
mmpretrain's ViT with out_type='avg_featmap' (the SplitMask fine-tuning
configs) has a final norm ``ln2`` after pooling that the pretraining ViT
(out_type='raw') lacks.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mm_instdisc.apis.selfsup_to_backbone import (  # noqa: E402
    check_backbone_keys, convert_selfsup_checkpoint)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('src', help='self-supervised checkpoint (.pth)')
    p.add_argument('dst', help='output file for the backbone weights')
    p.add_argument('--out-prefix', default='none',
                   choices=['none', 'backbone.'],
                   help="prefix of the output keys (default: none)")
    p.add_argument('--src-prefix', default='backbone.',
                   help="module whose weights to keep (default: 'backbone.'; "
                   "e.g. 'encoder_k.module.backbone.' for AdCo's key encoder)")
    p.add_argument('--verify', metavar='CONFIG',
                   help="check the weights against CONFIG's model.backbone")
    p.add_argument('--allow-missing', nargs='+', default=[],
                   metavar='PATTERN',
                   help='with --verify: target keys (fnmatch patterns) the '
                   "weights may lack, e.g. 'ln2.*' for a ViT fine-tuned "
                   "with out_type='avg_featmap'")
    return p.parse_args()


def verify(weights, config: str, out_prefix: str,
           allow_missing=()) -> None:
    import fnmatch
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
    missing, unexpected = check_backbone_keys(plain, backbone)
    allowed = [k for k in missing if k not in plain and any(
        fnmatch.fnmatchcase(k, p) for p in allow_missing)]
    missing = [k for k in missing if k not in allowed]
    if missing or unexpected:
        hint = ('' if unexpected or any(k in plain for k in missing) else
                ' If the target adds these layers on purpose (they keep '
                'their fresh initialisation), pass --allow-missing with '
                'their patterns.')
        raise SystemExit(
            f'--verify {config}: the weights do not match model.backbone '
            f'({backbone_cfg.type}): {len(missing)} missing, e.g. '
            f'{missing[:5]}; {len(unexpected)} unexpected, e.g. '
            f'{unexpected[:5]}.{hint}')
    print(f'verified: all {len(plain)} tensors match {backbone_cfg.type} of '
          f'{config}' + (f'; {len(allowed)} target keys keep their '
                         f'initialisation: {allowed}' if allowed else ''))


def main():
    args = parse_args()
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
    print(f'wrote {len(weights)} tensors ({n / 1e6:.2f} M values) of '
          f'{args.src_prefix}* to {args.dst} '
          f"(key prefix {out_prefix or 'none'!r})")
    if args.verify:
        verify(weights, args.verify, out_prefix, args.allow_missing)


if __name__ == '__main__':
    main()
