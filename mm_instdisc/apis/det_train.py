"""Train an mmdet model (detection transfer) with mmengine's Runner
(``python tools/det_train.py``; ``mm-instdisc-det-train`` writes a config
from your own COCO json, then runs it through :func:`main`).

    python tools/det_train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options model.backbone.init_cfg.checkpoint=CKPT ...]
    bash tools/benchmarks/mmdetection/dist_train_fpn.sh CONFIG CKPT GPUS

mmdet's own tools/train.py does the same (we have no `mim train mmdet`); this
one also applies mm_instdisc's fixes for mmengine (torch >= 2.6 checkpoints,
CPU-only distributed runs), keeps mmdet's data loading (pseudo_collate, no
persistent workers with 0 workers), and stops early, with a clear message,
when a Pretrained init_cfg still names no checkpoint.
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config

from mm_instdisc.apis.common import (add_common_args, add_resume_arg,
                                     apply_resume, build_runner,
                                     default_work_dir, finish_args)
from mm_instdisc.utils import exit_distributed


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None); sets
    ``LOCAL_RANK`` from ``--local_rank`` unless the launcher set it."""
    parser = argparse.ArgumentParser(description='Train an mmdet model')
    parser.add_argument('config', help='train config file path')
    add_resume_arg(parser)
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by actual / base batch size')
    add_common_args(parser)
    args = parser.parse_args(argv)
    finish_args(args)
    return args


def check_pretrained(cfg: Config) -> None:
    """Fail early when an init_cfg says Pretrained but names no file
    (``mm_instdisc.det.pretrained_check_hook.check_pretrained_cfg``).

    Raises:
        SystemExit: The problem, named.
    """
    from mm_instdisc.det.pretrained_check_hook import check_pretrained_cfg
    try:
        check_pretrained_cfg(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """The config with the command line applied: work dir, ``--amp``,
    resuming, ``--cfg-options``, no persistent workers with 0 workers."""
    default_work_dir(cfg, args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    apply_resume(cfg, args)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is not None and loader.get('num_workers', 0) == 0:
            loader.persistent_workers = False
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train the detector as the command line ``argv`` says
    (``sys.argv[1:]`` when None; ``default_scope`` mmdet unless the config
    names one), then leave a distributed run's process group
    (``mm_instdisc.utils.exit_distributed``)."""
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    cfg.setdefault('default_scope', 'mmdet')
    check_pretrained(cfg)
    runner = build_runner(cfg)
    runner.train()
    exit_distributed()


if __name__ == '__main__':
    main()
