"""Train an mmdet model (detection transfer) with mmengine's Runner.

    python tools/det_train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options model.backbone.init_cfg.checkpoint=CKPT ...]
    bash tools/benchmarks/mmdetection/dist_train_fpn.sh CONFIG CKPT GPUS

mmdet's own tools/train.py does the same (we have no `mim train mmdet`); this
one also works from an uninstalled checkout, applies mm_instdisc's fixes for
mmengine (torch >= 2.6 checkpoints, CPU-only distributed runs), keeps mmdet's
data loading (pseudo_collate, no persistent workers with 0 workers), and
stops early, with a clear message, when a Pretrained init_cfg still names no
checkpoint.
"""
import argparse

import _common  # noqa: F401  (sys.path, compat patches)
from _common import add_common_args, default_work_dir, finish_args

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mm_instdisc.utils import exit_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train an mmdet model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint of the work '
        'dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by actual / base batch size')
    add_common_args(parser)
    args = parser.parse_args()
    finish_args(args)
    return args


def check_pretrained(cfg) -> None:
    """Fail early when an init_cfg says Pretrained but names no file
    (``mm_instdisc.det.checks.check_pretrained_cfg``)."""
    from mm_instdisc.det.checks import check_pretrained_cfg
    try:
        check_pretrained_cfg(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')


def merge_args(cfg, args):
    default_work_dir(cfg, args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is not None and loader.get('num_workers', 0) == 0:
            loader.persistent_workers = False
    return cfg


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    cfg.setdefault('default_scope', 'mmdet')
    check_pretrained(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    exit_distributed()


if __name__ == '__main__':
    main()
