"""Train a model from a config, like mmpretrain's tools/train.py
(``mm-instdisc-train CONFIG``, ``python tools/train.py CONFIG``).

    mm-instdisc-train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                             [--minutes M]
    bash tools/dist_train.sh CONFIG NUM_PROCS      # distributed, GPU or CPU
    python -m torch.distributed.run --nproc_per_node N \\
        -m mm_instdisc.apis.train CONFIG --launcher pytorch
"""
import argparse
from typing import Optional, Sequence

import torch
from mmengine.config import Config

from mm_instdisc.apis.common import (add_common_args, add_resume_arg,
                                     apply_resume, build_runner,
                                     default_work_dir, finish_args,
                                     set_default_dataloader_cfg)
from mm_instdisc.utils import exit_distributed


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None); sets
    ``LOCAL_RANK`` from ``--local_rank`` unless the launcher set it."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    add_resume_arg(parser)
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
    args = parser.parse_args(argv)
    finish_args(args)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """The config with the command line applied: work dir, ``--amp``,
    resuming, data loader defaults, ``--cfg-options``, ``--minutes`` (else
    the config's ``time_budget_minutes``, capped at its ``max_epochs``), and
    a ``CheckpointSafetyHook`` (atomic checkpoint writes) unless the config
    has one."""
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
    defaults = (cfg.get('default_hooks') or {}).values()
    if not any(h and h.get('type') == 'CheckpointSafetyHook'
               for h in list(hooks) + list(defaults)):
        cfg.custom_hooks = list(hooks) + [dict(type='CheckpointSafetyHook')]
    apply_resume(cfg, args)
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_default_dataloader_cfg(cfg, field, args.no_pin_memory,
                                   args.no_persistent_workers)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    minutes = getattr(args, 'minutes', None)
    if minutes is not None:
        from mm_instdisc.engine.loops import apply_time_budget
        cfg = apply_time_budget(cfg, minutes)
    elif cfg.get('time_budget_minutes') is not None and (
            cfg.get('train_cfg') or {}).get('type') == 'EpochBasedTrainLoop':
        # the config's own budget (the 15-minute recipes): its epochs, or
        # fewer where they would not end within the budget on this host
        from mm_instdisc.engine.loops import apply_time_budget
        cfg = apply_time_budget(cfg, cfg.time_budget_minutes,
                                max_epochs=cfg.train_cfg.max_epochs)
    return cfg


def train(cfg: Config):
    """Build the config's runner and train; returns the runner."""
    runner = build_runner(cfg)
    runner.train()
    return runner


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train as the command line ``argv`` says (``sys.argv[1:]`` when
    None), then leave a distributed run's process group
    (``mm_instdisc.utils.exit_distributed``)."""
    args = parse_args(argv)
    train(merge_args(Config.fromfile(args.config), args))
    exit_distributed()


if __name__ == '__main__':  # torch.distributed.run -m mm_instdisc.apis.train
    main()
