from typing import Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm

from mm_instdisc.utils.checkpoint import unwrap_model

from ._checkpoint import checkpoint_after_this_iter


def average_bn_stats(model: torch.nn.Module) -> int:
    """Average every BatchNorm's running mean and variance over the ranks of
    the default process group (in place, float32 all-reduce). Returns the
    number of BatchNorm layers synchronised (0 outside distributed runs)."""
    if get_world_size() < 2:
        return 0
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)
           and m.track_running_stats and m.running_mean is not None]
    if not bns:
        return 0
    stats = [t for m in bns for t in (m.running_mean, m.running_var)]
    flat = torch.cat([t.detach().float().reshape(-1) for t in stats])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= get_world_size()
    offset = 0
    for t in stats:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t).to(t.dtype))
        offset += n
    return len(bns)


@HOOKS.register_module()
class BNStatsSyncHook(Hook):
    """Average BatchNorm running statistics over the ranks before every
    checkpoint and every validation.

    Without SyncBN each rank's BatchNorm layers normalise with their own
    batch statistics and keep their own running averages; checkpoints are
    written by rank 0 only, so without this hook a checkpoint (and the kNN
    read-out of a validation on rank 0) holds rank 0's statistics alone, and
    after a resume every rank continues from rank 0's. With it, all ranks
    hold the mean over ranks at those points, the same on every rank.
    Training itself is unchanged (the forward pass still uses per-rank batch
    statistics, as in the official NPID / MoCo / AdCo recipes); use
    ``norm_cfg=dict(type='SyncBN')`` to synchronise the forward pass too.
    Single-process runs are not affected.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook writes

    @staticmethod
    def _model(runner):
        return unwrap_model(runner.model)

    def after_train_epoch(self, runner) -> None:
        average_bn_stats(self._model(runner))

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        if checkpoint_after_this_iter(runner):
            average_bn_stats(self._model(runner))

    def before_val_epoch(self, runner) -> None:
        average_bn_stats(self._model(runner))

    def before_test_epoch(self, runner) -> None:
        average_bn_stats(self._model(runner))
