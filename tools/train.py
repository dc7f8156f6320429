"""Train a model from a config, like mmpretrain's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--minutes M]
    bash tools/dist_train.sh CONFIG NUM_PROCS      # distributed, GPU or CPU
"""
import argparse

import _common  # noqa: F401  (sys.path, compat patches)
from _common import (add_common_args, default_work_dir, finish_args,
                     set_default_dataloader_cfg)

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mm_instdisc.utils import exit_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint of the work '
        'dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision: fp16 with loss '
                        'scaling on a GPU, bf16 autocast on a CPU')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by actual / base batch size')
    parser.add_argument('--minutes', type=float,
                        help='fit the schedule (warm-up + cosine) to a wall-'
                        'time budget on this host (TimeBudgetTrainLoop; the '
                        "config's LinearLR + CosineAnnealingLR schedule is "
                        'converted)')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    add_common_args(parser)
    args = parser.parse_args()
    finish_args(args)
    return args


def merge_args(cfg, args):
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    default_work_dir(cfg, args)
    if args.amp:
        # mmengine's AmpOptimWrapper refuses CPUs, ours runs bf16 there
        # (AdCo's AdversarialNegativesOptimWrapperConstructor builds its
        # wrapper over whichever type this picks)
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            cfg.optim_wrapper.type = 'AutocastOptimWrapper'
            cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    # atomic checkpoint writes, and --resume past a damaged latest checkpoint
    hooks = cfg.get('custom_hooks') or []
    if not any(h.get('type') == 'CheckpointSafetyHook' for h in hooks):
        cfg.custom_hooks = list(hooks) + [dict(type='CheckpointSafetyHook')]
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_default_dataloader_cfg(cfg, field, args.no_pin_memory,
                                   args.no_persistent_workers)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'minutes', None) is not None:
        from mm_instdisc.engine.loops import apply_time_budget
        cfg = apply_time_budget(cfg, args.minutes)
    return cfg


def train(cfg):
    """Build the config's runner and train."""
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    return runner


def main():
    args = parse_args()
    train(merge_args(Config.fromfile(args.config), args))
    exit_distributed()


if __name__ == '__main__':
    main()
