"""Shared by ``train``, ``test`` and ``det_train``: the command-line
arguments mmpretrain's tools/train.py and tools/test.py have in common (and
the two trainers' ``--resume``), the data loader and work-dir defaults, and
building a config's runner. Importing
it applies mm_instdisc's compatibility patches for mmengine
(``mm_instdisc.utils.apply_compat_patches``), as the scripts did."""
import os
import os.path as osp

import torch
from mmengine.config import ConfigDict, DictAction

from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()


def add_common_args(parser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local_rank`` to an ``argparse.ArgumentParser``."""
    parser.add_argument('--work-dir', help='directory for logs and models')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (a.b=1 c="[1,2]")')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    # torch.distributed.launch passes --local_rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_resume_arg(parser) -> None:
    """Add ``--resume [CKPT]`` (``'auto'`` without a path)."""
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint of the work '
        'dir when no path is given')


def apply_resume(cfg, args) -> None:
    """``--resume``: from CKPT, or (``'auto'``) from the work dir's latest
    checkpoint; ``--auto-scale-lr``: enable the config's lr scaling."""
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True


def finish_args(args) -> None:
    """Set ``LOCAL_RANK`` from ``--local_rank`` unless the launcher set it."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def set_default_dataloader_cfg(cfg, field: str, no_pin_memory=False,
                               no_persistent_workers=False) -> None:
    """mmpretrain's defaults, minus the settings that break on CPU / 0
    workers."""
    if cfg.get(field, None) is None:
        return
    loader = ConfigDict(pin_memory=torch.cuda.is_available(),
                        persistent_workers=True,
                        collate_fn=dict(type='default_collate'))
    loader.update(cfg[field])
    if no_pin_memory:
        loader.pin_memory = False
    if no_persistent_workers or loader.get('num_workers', 0) == 0:
        loader.persistent_workers = False
    cfg[field] = loader


def default_work_dir(cfg, args) -> None:
    """``--work-dir``, else the config's ``work_dir``, else
    ``./work_dirs/<config name>``; and ``cfg.launcher = args.launcher``."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.launcher = args.launcher


def build_runner(cfg):
    """The config's runner: mmengine's ``Runner``, or the registered
    ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return (Runner.from_cfg(cfg)
            if 'runner_type' not in cfg else RUNNERS.build(cfg))
