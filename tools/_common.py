"""Shared by tools/train.py and tools/test.py (mmpretrain-compatible CLI)."""
import os
import os.path as osp
import sys

# work from an uninstalled checkout too
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
from mmengine.config import ConfigDict  # noqa: E402

from mm_instdisc.utils import apply_compat_patches  # noqa: E402

apply_compat_patches()


def add_common_args(parser) -> None:
    parser.add_argument('--work-dir', help='directory for logs and models')
    parser.add_argument(
        '--cfg-options', nargs='+', action=__import__(
            'mmengine.config', fromlist=['DictAction']).DictAction,
        help='override config settings, key=value (a.b=1 c="[1,2]")')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    # torch.distributed.launch passes --local_rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def finish_args(args) -> None:
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def set_default_dataloader_cfg(cfg, field: str, no_pin_memory=False,
                               no_persistent_workers=False) -> None:
    """mmpretrain's defaults, minus the settings that break on CPU / 0 workers."""
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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.launcher = args.launcher
