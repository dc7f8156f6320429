"""Everything in :mod:`mm_instdisc.modules` that crosses ranks.

The convention (one for every loss here):

* A loss never reaches for another rank's rows by itself. Rows of the global
  batch come in as a pair ``(rows, offset)``: the concatenation over ranks
  and the row of this rank's first sample. The algorithm gathers them when
  it computes them (AdCo's keys: ``AdCoLoss(q, k_all, negatives,
  pos_offset)``; Exemplar's keys go to the queue), or hands the loss a
  ``gather`` callable of type :data:`GatherFn` when the loss computes them
  itself (SplitMask's pooled descriptors: ``SplitMaskLoss(..., gather)``).
  :func:`gather_rows` is that callable; without torch.distributed (or one
  process) it is the identity ``(x, 0)``.
* State that has to agree on every rank is reduced here too: NPID's
  normalising constant (:func:`log_mean_exp_over_ranks`) and the sharded
  memory bank's collectives (:func:`all_gather_cat`, :func:`all_reduce`).

So a plain single-process loop never needs torch.distributed. The
collectives the losses and algorithms share are in this file; the sharded
memory bank keeps its shard-specific ones (scatter of updates to their
owners, the sharded kNN's gather) next to its shards.
"""
import math
from typing import Callable, List, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

#: ``x (B, ...) -> (rows of all ranks (M, ...), row of this rank's first)``
GatherFn = Callable[[Tensor], Tuple[Tensor, int]]


def world(group=None) -> Tuple[int, int]:
    """(rank, world size) of ``group``; (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def all_gather_cat(t: Tensor, group=None) -> Tuple[Tensor, List[int]]:
    """Concatenation over ranks of tensors whose first dimension may differ,
    and the per-rank sizes. No gradient."""
    rank, size_w = world(group)
    if size_w == 1:
        return t, [t.shape[0]]
    size = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(size) for _ in range(size_w)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s) for s in sizes]
    top = max(sizes)
    pad = t.new_zeros((top - t.shape[0], ) + tuple(t.shape[1:]))
    padded = torch.cat([t, pad]) if top > t.shape[0] else t
    out = [torch.empty_like(padded) for _ in range(size_w)]
    dist.all_gather(out, padded.contiguous(), group=group)
    return torch.cat([o[:s] for o, s in zip(out, sizes)]), sizes


def gather_rows(x: Tensor, with_grad: bool = False,
                group=None) -> Tuple[Tensor, int]:
    """The :data:`GatherFn` of the package: all ranks' rows of ``x`` (B,
    ...) and the row of this rank's first one.

    With ``with_grad`` this rank's rows keep their gradient (the others are
    constants, as in every all-gather contrastive loss); ranks may hold
    different B.
    """
    rank, _ = world(group)
    rows, sizes = all_gather_cat(x.detach().contiguous(), group)
    offset = sum(sizes[:rank])
    if with_grad and len(sizes) > 1:
        rows = torch.cat([rows[:offset], x, rows[offset + x.shape[0]:]])
    elif len(sizes) == 1:
        rows = x if with_grad else x.detach()
    return rows, offset


def all_reduce(t: Tensor, op=None, group=None) -> Tensor:
    """In-place all-reduce (sum by default) of ``t``; returns it."""
    if world(group)[1] > 1:
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM, group=group)
    return t


def log_mean_exp_over_ranks(log_x: Tensor, group=None) -> Tensor:
    """``log(mean over ranks of exp(log_x))`` of a scalar, in log space."""
    _, size_w = world(group)
    if size_w == 1:
        return log_x
    parts = [torch.empty_like(log_x) for _ in range(size_w)]
    dist.all_gather(parts, log_x.contiguous(), group=group)
    return torch.logsumexp(torch.stack(parts), 0) - math.log(size_w)
