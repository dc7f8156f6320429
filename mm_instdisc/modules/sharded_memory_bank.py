"""A memory bank split across the ranks of a torch.distributed job.

Every reference implementation of NPID (lemniscate, mmselfsup, VISSL) keeps
the whole N x D bank on every device, so instance discrimination stops at one
device's memory (N = 14.2M images x 128 floats is 7.3 GB; a billion is
512 GB). Here rank ``r`` of ``W`` owns rows ``[r * P, min(N, (r + 1) * P))``
with ``P = ceil(N / W)`` (the last shard may be shorter):

* :meth:`ShardedMemoryBank.update` / :meth:`~ShardedMemoryBank.fill`: the
  batch's (index, feature) pairs are all-gathered and every rank writes the
  rows it owns, in float32, storing ``dtype`` (float32, bfloat16 or float16);
* :meth:`~ShardedMemoryBank.get`: rows for any global indices (positives),
  fetched from their owners by one all-reduce of the gathered request;
* :func:`sharded_softmax_loss`: the exact non-parametric softmax over all N
  rows as a distributed log-sum-exp (each rank streams its shard for the
  gathered queries; max and sum of exponentials are combined by all-reduce;
  the backward pass all-reduces each shard's share of the softmax's expected
  row, so every query gets its exact gradient);
* :func:`sharded_sampled_softmax_loss`: softmax over [positive, m negatives
  shared by the global batch], the negatives drawn uniformly over all N by a
  generator in the same state on every rank (no communication for the draw),
  each rank scoring the negatives it owns;
* :func:`sharded_row_logits`: ``f . v_j`` for any global rows (NCE's and the
  sampled softmax's per-sample negatives): each rank scores the gathered
  queries against the rows it owns, one all-reduce sums the (B, m) logits,
  and the backward pass all-reduces each shard's ``sum_j g_j v_j``;
* :func:`sharded_knn_topk`: kNN against the sharded bank, a local top-k per
  rank then an all-gather and merge: the same neighbours as one bank.

With one process (or no process group) everything reduces to the plain
single-device computation. Plain PyTorch (torch.distributed only).
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import PeriodicCheck, check_finite, check_indices
from .distributed import all_gather_cat, all_reduce
from .distributed import world as _world
from .memory_bank import (check_bank_args, first_occurrence,
                          momentum_update_rows)
from .npid_loss import (sample_negatives, sampled_softmax_from_logits,
                        stream_logsumexp, stream_softmax_expectation)

_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16,
           'float16': torch.float16}


def shard_bounds(length: int, world_size: int, rank: int) -> Tuple[int, int]:
    """Rows ``[start, end)`` of ``rank``: ``P = ceil(N / W)`` per shard, the
    last one shorter (possibly empty when N < W)."""
    if length <= 0 or world_size <= 0 or not 0 <= rank < world_size:
        raise ValueError(f'Illegal shard: length={length}, world_size='
                         f'{world_size}, rank={rank}.')
    per = math.ceil(length / world_size)
    start = min(length, rank * per)
    return start, min(length, start + per)


class ShardedMemoryBank(nn.Module):
    """NPID's memory bank, rows split across the ranks (module docstring).

    Same update convention as :class:`MemoryBank` (``momentum`` is the
    weight on the old row, rows kept unit-norm), and the same interface:
    ``update``/``fill`` take this rank's batch and gather it themselves,
    ``get``/``rows``, ``stats``, ``gather_to``, ``checkpoint_state``,
    ``broadcast_from``, ``check_sync``, ``rank_local_buffers`` and the
    loss's calls (``softmax_loss``, ``pair_logits``,
    ``sampled_softmax_loss``), all collective here. The local shard is the
    persistent buffer ``bank`` of shape (end - start, D); the buffer
    ``shard`` = (start, end, N, world size) goes into checkpoints with it,
    and loading a checkpoint of another sharding is an error that says so.

    Args:
        length (int): N, rows of the whole bank.
        feat_dim (int): D. Defaults to 128.
        momentum (float): Weight on the old row, in [0, 1). Defaults to 0.5.
        dtype (str | torch.dtype): Storage: ``'float32'``, ``'bfloat16'`` or
            ``'float16'`` (updates and normalisation in float32).
            Defaults to ``'float32'``.
        seed (int): Seed of the random initial rows; row ``i`` is the same
            whatever the number of shards. Defaults to 0.
        check_interval (int): ``update`` calls between the checks that read
            values back (index range, non-finite features). Defaults to 100.
        group: torch.distributed process group. Defaults to the default one.
        rank (int, optional), world_size (int, optional): Override the
            group's (e.g. to build one shard on a single process).
    """

    bank: Tensor
    shard: Tensor
    SEED_BLOCK = 65536  # rows generated per seeded block

    def __init__(self, length: int, feat_dim: int = 128,
                 momentum: float = 0.5, dtype='float32', seed: int = 0,
                 check_interval: int = 100, group=None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        super().__init__()
        check_bank_args(length, feat_dim, momentum)
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f'Illegal bank dtype: {dtype!r}; expected '
                                 f'one of {sorted(_DTYPES)}.')
            dtype = _DTYPES[dtype]
        g_rank, g_world = _world(group)
        self.rank = g_rank if rank is None else int(rank)
        self.world_size = g_world if world_size is None else int(world_size)
        self.group = group
        self.length, self.feat_dim = int(length), int(feat_dim)
        self.momentum = float(momentum)
        self.start, self.end = shard_bounds(self.length, self.world_size,
                                            self.rank)
        self._check = PeriodicCheck(check_interval)
        self.register_buffer(
            'bank', torch.empty(self.end - self.start, self.feat_dim,
                                dtype=dtype))
        self.register_buffer('shard', torch.tensor(
            [self.start, self.end, self.length, self.world_size]))
        # (seed, draws so far) of the shared negatives' stream: the same on
        # every rank, checkpointed, so a resumed run draws the same negatives
        self.register_buffer('draws', torch.tensor([int(seed), 0]))
        self.reset_random(seed)

    # ------------------------------------------------------------ state
    @torch.no_grad()
    def reset_random(self, seed: int = 0) -> None:
        """Random unit rows; row i depends on (seed, i) only, so every
        sharding of the same seed holds the same bank."""
        b = self.SEED_BLOCK
        for block in range(self.start // b, (self.end - 1) // b + 1
                           if self.end > self.start else 0):
            lo, hi = block * b, min(self.length, (block + 1) * b)
            g = torch.Generator().manual_seed(seed * 1_000_003 + block)
            rows = F.normalize(torch.randn(hi - lo, self.feat_dim,
                                           generator=g), dim=1)
            s, e = max(lo, self.start), min(hi, self.end)
            self.bank[s - self.start:e - self.start] = rows[
                s - lo:e - lo].to(self.bank)

    @torch.no_grad()
    def load_full(self, full: Tensor) -> None:
        """Take this rank's rows of a whole (N, D) bank (e.g. a replicated
        ``MemoryBank.bank``)."""
        if full.shape != (self.length, self.feat_dim):
            raise ValueError(f'Expected a full bank of shape ({self.length}, '
                             f'{self.feat_dim}), got {tuple(full.shape)}.')
        self.bank.copy_(full[self.start:self.end].to(self.bank))

    def negatives_generator(self) -> torch.Generator:
        """A CPU generator for the next draw of shared negatives, in the
        same state on every rank (seeded by the bank's seed and the number
        of draws so far, which advances; no communication)."""
        seed, n = (int(v) for v in self.draws)
        self.draws[1] += 1
        return torch.Generator().manual_seed(
            (seed * 1_000_003 + n * 7_919 + 12_345) % (2**63 - 1))

    @torch.no_grad()
    def gather_to(self, dst: int = 0) -> Optional[Tensor]:
        """The whole (N, D) bank, in its storage dtype on the CPU, on rank
        ``dst`` only (None elsewhere): what a checkpoint written by one rank
        needs. Collective. Rank ``dst`` holds N x D for the moment."""
        rank, world = _world(self.group)
        if world == 1:
            return self.bank.detach().cpu().clone()
        per = math.ceil(self.length / world)
        pad = self.bank.new_zeros(per, self.feat_dim)
        pad[:self.end - self.start] = self.bank
        out = ([torch.empty_like(pad) for _ in range(world)]
               if rank == dst else None)
        dist.gather(pad, out, dst=dst, group=self.group)
        if rank != dst:
            return None
        return torch.cat(out)[:self.length].cpu()

    @torch.no_grad()
    def gather_full(self) -> Tensor:
        """The whole (N, D) bank on every rank, float32 (small N only:
        tests, conversion to a replicated bank)."""
        full, _ = all_gather_cat(self.bank.float(), self.group)
        return full

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        key, bank_key = prefix + 'shard', prefix + 'bank'
        saved_bank = state_dict.get(bank_key)
        saved = ([int(v) for v in state_dict[key]] if key in state_dict else
                 None)
        mine = [int(v) for v in self.shard]
        full = saved_bank is not None and saved_bank.dim() == 2 and (
            saved_bank.shape[0] == self.length) and (
                saved is None or saved[:3] == [0, self.length, self.length])
        if full and saved != mine:
            # a whole bank (written by MemoryBankHook before a checkpoint, or
            # a replicated MemoryBank's): take this rank's rows (re-shard)
            state_dict[bank_key] = saved_bank[self.start:self.end]
            state_dict[key] = self.shard.clone()
        elif saved is not None:
            if saved != mine:
                raise RuntimeError(
                    f'ShardedMemoryBank checkpoint holds rows [{saved[0]}, '
                    f'{saved[1]}) of a bank of {saved[2]} rows split over '
                    f'{saved[3]} ranks; this rank {self.rank} expects rows '
                    f'[{mine[0]}, {mine[1]}) of {mine[2]} over {mine[3]} '
                    'ranks. Resume with the same number of processes, or '
                    'load a whole bank (a checkpoint written with '
                    'MemoryBankHook holds one and re-shards itself), or '
                    'call ShardedMemoryBank.load_full on the gathered bank.')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # ------------------------------------------------------------ rows
    def _check_indices(self, idx: Tensor) -> None:
        check_indices(idx, self.length)

    def _owned(self, idx: Tensor) -> Tensor:
        return (idx >= self.start) & (idx < self.end)

    @torch.no_grad()
    def get(self, idx: Tensor) -> Tensor:
        """Rows ``idx`` (this rank's request; global indices), float32
        (B, D). Collective: every rank must call it."""
        self._check_indices(idx)
        idx = idx.to(self.bank.device)
        all_idx, sizes = all_gather_cat(idx, self.group)
        rows = torch.zeros(all_idx.numel(), self.feat_dim,
                           device=self.bank.device)
        own = self._owned(all_idx)
        rows[own] = self.bank[all_idx[own] - self.start].float()
        all_reduce(rows, group=self.group)
        offset = sum(sizes[:self.rank]) if len(sizes) > 1 else 0
        return rows[offset:offset + idx.numel()]

    rows = get  # the loss's name; checked on every call (it is collective)

    # ------------------------------------------------------------ loss
    def softmax_loss(self, feats: Tensor, idx: Tensor, temperature: float,
                     chunk_size: int = 65536,
                     pos_rows: Optional[Tensor] = None) -> Tensor:
        """:func:`sharded_softmax_loss` (B, ), exact over all N rows.
        Collective."""
        return sharded_softmax_loss(feats, idx, self, temperature,
                                    chunk_size, pos_rows)

    def pair_logits(self, feats: Tensor, idx: Tensor, num_negatives: int,
                    shared: bool = False,
                    generator: Optional[torch.Generator] = None,
                    dense_limit: int = 2**25,
                    pos_rows: Optional[Tensor] = None):
        """(B, ) positive and (B, m) noise dot products ``f . v`` of this
        rank's queries (:func:`sharded_row_logits`). The negatives of the
        gathered batch are drawn over all N rows from the bank's own stream
        (:meth:`negatives_generator`, the same on every rank and
        checkpointed), not from ``generator``. Collective."""
        all_idx, _ = all_gather_cat(idx.to(self.bank.device), self.group)
        neg = sample_negatives(all_idx, num_negatives, self.length, shared,
                               self.negatives_generator())
        if pos_rows is None:
            pos_rows = self.get(idx)
        l_pos = (feats * pos_rows.to(feats)).sum(1)
        return l_pos, sharded_row_logits(feats, neg, self, dense_limit)

    def sampled_softmax_loss(self, feats: Tensor, idx: Tensor,
                             temperature: float, num_negatives: int,
                             shared: bool = False,
                             generator: Optional[torch.Generator] = None,
                             chunk_size: int = 65536,
                             dense_limit: int = 2**25,
                             pos_rows: Optional[Tensor] = None) -> Tensor:
        """Cross-entropy over [positive, m negatives] / tau, (B, ): shared
        negatives streamed by their owners
        (:func:`sharded_sampled_softmax_loss`), one set per sample from
        :meth:`pair_logits`. Negatives from the bank's own stream, as
        there. Collective."""
        if shared:
            return sharded_sampled_softmax_loss(
                feats, idx, self, temperature, num_negatives,
                self.negatives_generator(), chunk_size, pos_rows)
        l_pos, l_neg = self.pair_logits(feats, idx, num_negatives, False,
                                        generator, dense_limit, pos_rows)
        inv_tau = 1.0 / temperature
        return sampled_softmax_from_logits(l_pos * inv_tau, l_neg * inv_tau)

    def _gather_owned(self, idx: Tensor, feats: Tensor):
        if feats.shape != (idx.numel(), self.feat_dim):
            raise ValueError(f'Expected features of shape ({idx.numel()}, '
                             f'{self.feat_dim}), got {tuple(feats.shape)}.')
        idx = idx.to(self.bank.device)
        feats = F.normalize(feats.detach().float().to(self.bank.device),
                            dim=1)
        all_idx, _ = all_gather_cat(idx, self.group)
        all_feats, _ = all_gather_cat(feats, self.group)
        keep = first_occurrence(all_idx)
        all_idx, all_feats = all_idx[keep], all_feats[keep]
        own = self._owned(all_idx)
        return all_idx[own] - self.start, all_feats[own]

    @torch.no_grad()
    def update(self, idx: Tensor, feats: Tensor) -> None:
        """Momentum update of rows ``idx`` with ``feats`` (this rank's batch;
        the batch is gathered and each rank writes its rows). Collective."""
        if self._check.due():
            self._check_indices(idx)
            check_finite('Features passed to ShardedMemoryBank.update', feats)
        local, f = self._gather_owned(idx, feats)
        momentum_update_rows(self.bank, local, f, self.momentum)

    @torch.no_grad()
    def fill(self, idx: Tensor, feats: Tensor) -> None:
        """Overwrite rows ``idx`` with normalised ``feats``. Collective."""
        self._check_indices(idx)
        check_finite('Features passed to ShardedMemoryBank.fill', feats)
        local, f = self._gather_owned(idx, feats)
        self.bank.index_copy_(0, local, f.to(self.bank.dtype))

    @torch.no_grad()
    def stats(self) -> dict:
        """Row-norm range and the norm of the mean row, over all shards."""
        norms = self.bank.float().norm(dim=1)
        inf = torch.tensor(math.inf, device=self.bank.device)
        lo = norms.min() if norms.numel() else inf
        hi = norms.max() if norms.numel() else -inf
        lo = all_reduce(lo.clone(), dist.ReduceOp.MIN, self.group)
        hi = all_reduce(hi.clone(), dist.ReduceOp.MAX, self.group)
        total = all_reduce(self.bank.float().sum(0), group=self.group)
        return dict(norm_min=lo.item(), norm_max=hi.item(),
                    mean_norm=(total / self.length).norm().item())

    def checkpoint_state(self, collective: bool = True
                         ) -> Optional[Dict[str, Tensor]]:
        """Entries that replace this bank's own in the checkpoint rank 0
        writes, so that it holds the whole bank (which re-shards itself on
        loading): ``bank`` (gathered, :meth:`gather_to`) and ``shard`` of
        one shard. Collective; None off rank 0, and None without
        ``collective`` where gathering would need the other ranks."""
        if not collective and _world(self.group)[1] > 1:
            return None
        full = self.gather_to(0)
        if full is None:
            return None
        return dict(bank=full, shard=torch.tensor(
            [0, self.length, self.length, 1]))

    def broadcast_from(self, src: int = 0) -> None:
        """Nothing to do: each rank owns its rows, and the random rows are
        the same bank for any number of ranks."""

    def check_sync(self) -> None:
        """Nothing to compare: the shards differ by design."""

    def rank_local_buffers(self) -> Tuple[str, ...]:
        """Buffers that differ between ranks (DDP must neither broadcast
        nor compare them): all of this bank's."""
        return tuple(n for n, _ in self.named_buffers())

    def extra_repr(self) -> str:
        return (f'length={self.length}, feat_dim={self.feat_dim}, rows='
                f'[{self.start}, {self.end}), world_size={self.world_size}, '
                f'dtype={self.bank.dtype}, momentum={self.momentum}')


class _ShardedSoftmaxCE(torch.autograd.Function):
    """``lse_j(f.v_j / tau) - f.v_i / tau`` per local query, the log-sum-exp
    over rows spread across ranks (each rank passes its own ``rows``),
    optionally with the positive ``f.v_i / tau`` added to the sum.

    Forward: queries all-gathered; each rank streams its rows (running max
    and sum); global max by all-reduce MAX, sum by all-reduce SUM.
    Backward: each rank's ``sum_j p_j v_j`` over its rows for all gathered
    queries, all-reduced; every query takes its own row:
    ``grad f = (sum_j p_j v_j + p_i v_i [add_positive] - v_i) / tau``.
    """

    @staticmethod
    def forward(ctx, feats, rows, pos_rows, inv_tau, chunk, add_positive,
                group):
        f_all, sizes = all_gather_cat(feats.detach(), group)
        run_max, run_sum = stream_logsumexp(f_all, rows, inv_tau, chunk)
        pos = (feats * pos_rows).sum(1) * inv_tau
        g_max = all_reduce(run_max.clone(), dist.ReduceOp.MAX, group)
        if add_positive:
            pos_all, _ = all_gather_cat(pos.detach(), group)
            g_max = torch.maximum(g_max, pos_all)
        scaled = torch.where(torch.isfinite(run_max),
                             run_sum * torch.exp(run_max - g_max),
                             torch.zeros_like(run_sum))
        total = all_reduce(scaled, group=group)
        if add_positive:
            total = total + torch.exp(pos_all - g_max)
        lse_all = g_max + total.log()
        rank = _world(group)[0]
        offset = sum(sizes[:rank]) if len(sizes) > 1 else 0
        lse = lse_all[offset:offset + feats.shape[0]]
        ctx.save_for_backward(f_all, rows, pos_rows, lse_all, lse, pos)
        ctx.inv_tau, ctx.chunk, ctx.add_positive = inv_tau, chunk, add_positive
        ctx.group, ctx.offset = group, offset
        return lse - pos

    @staticmethod
    def backward(ctx, grad_out):
        f_all, rows, pos_rows, lse_all, lse, pos = ctx.saved_tensors
        inv_tau = ctx.inv_tau
        expect = stream_softmax_expectation(f_all, rows, lse_all, inv_tau,
                                            ctx.chunk)
        all_reduce(expect, group=ctx.group)
        expect = expect[ctx.offset:ctx.offset + grad_out.shape[0]]
        weight = -1.0
        if ctx.add_positive:
            weight = torch.exp(pos - lse)[:, None] - 1.0
        grad = (expect + weight * pos_rows) * (inv_tau * grad_out[:, None])
        return grad, None, None, None, None, None, None


class _ShardedRowLogits(torch.autograd.Function):
    """``f_b . v_{j}`` for this rank's queries and global row indices
    ``neg`` ((B_all, m) one set per query of the gathered batch, or (m, )
    shared), the rows spread over the ranks.

    Forward: queries all-gathered; each rank fills the (B_all, m) entries
    whose row it owns (zeros elsewhere); an all-reduce SUM completes them;
    each rank keeps its queries' rows. Backward: the incoming (B, m)
    gradients all-gathered; each rank's ``sum_k g_bk v_{j_bk}`` over its
    rows, all-reduced; each rank keeps its queries'.
    """

    @staticmethod
    def forward(ctx, feats, neg, shard, start, dense_limit, group):
        f_all, sizes = all_gather_cat(feats.detach(), group)
        own = (neg >= start) & (neg < start + shard.shape[0])
        local = (neg - start).clamp_(0, max(0, shard.shape[0] - 1))
        partial = f_all.new_zeros(f_all.shape[0], neg.shape[-1])
        if neg.dim() == 1:  # shared: one (B_all, D) x (D, m_own) product
            cols = own.nonzero().squeeze(1)
            rows = shard.index_select(0, local[cols]).float()
            partial[:, cols] = f_all @ rows.t()
            saved = (cols, rows)
        else:
            b, k = own.nonzero(as_tuple=True)
            loc = local[b, k]
            if f_all.shape[0] * shard.shape[0] <= dense_limit:
                full = f_all @ shard.float().t()  # (B_all, shard) GEMM
                partial[b, k] = full[b, loc]
            else:
                partial[b, k] = (f_all[b] * shard.index_select(
                    0, loc).float()).sum(1)
            saved = (b, k, loc)
        all_reduce(partial, group=group)
        rank = _world(group)[0]
        offset = sum(sizes[:rank]) if len(sizes) > 1 else 0
        ctx.shared, ctx.saved_idx = neg.dim() == 1, saved
        ctx.save_for_backward(shard)  # an in-place update before backward
        ctx.group, ctx.offset = group, offset  # is then an error
        ctx.n_all, ctx.dense_limit = f_all.shape[0], dense_limit
        return partial[offset:offset + feats.shape[0]]

    @staticmethod
    def backward(ctx, grad_out):
        g_all, _ = all_gather_cat(grad_out.contiguous(), ctx.group)
        shard, = ctx.saved_tensors
        if ctx.shared:
            cols, rows = ctx.saved_idx
            contrib = g_all[:, cols] @ rows
        else:
            b, k, loc = ctx.saved_idx
            vals = g_all[b, k]
            if ctx.n_all * shard.shape[0] <= ctx.dense_limit:
                dense = g_all.new_zeros(ctx.n_all, shard.shape[0])
                dense.index_put_((b, loc), vals, accumulate=True)
                contrib = dense @ shard.float()
            else:
                contrib = g_all.new_zeros(ctx.n_all, shard.shape[1])
                contrib.index_add_(0, b, vals[:, None] * shard.index_select(
                    0, loc).float())
        all_reduce(contrib, group=ctx.group)
        return (contrib[ctx.offset:ctx.offset + grad_out.shape[0]], None,
                None, None, None, None)


def sharded_row_logits(feats: Tensor, neg: Tensor, bank: ShardedMemoryBank,
                       dense_limit: int = 2**25) -> Tensor:
    """``feats[b] . v_j`` for global row indices ``neg`` of a sharded bank,
    float32, differentiable in ``feats``.

    Args:
        feats (Tensor): This rank's queries (B, D).
        neg (Tensor): Global row indices for the *gathered* batch (all
            ranks' queries in rank order): (B_all, m), one set per query, or
            (m, ) shared by all; the same tensor on every rank (e.g. drawn by
            :meth:`ShardedMemoryBank.negatives_generator`).
        bank (ShardedMemoryBank): The bank.
        dense_limit (int): Largest B_all x shard rows for which per-query
            logits come from one (B_all, shard) product, else from gathered
            rows. Defaults to 2**25.

    Returns:
        Tensor: (B, m) logits of this rank's queries. Collective.
    """
    neg = neg.to(bank.bank.device)
    with torch.autocast(feats.device.type, enabled=False):
        return _ShardedRowLogits.apply(feats.float(), neg, bank.bank,
                                       bank.start, int(dense_limit),
                                       bank.group)


def sharded_softmax_loss(feats: Tensor, idx: Tensor, bank: ShardedMemoryBank,
                         temperature: float,
                         chunk_size: int = 65536,
                         pos_rows: Optional[Tensor] = None) -> Tensor:
    """Per-sample ``-log P(i | f)`` of the full non-parametric softmax over
    all N rows of a sharded bank, (B, ) for this rank's queries; exact (the
    same values and gradients as one bank on one device). Collective: every
    rank calls it with its own batch. ``pos_rows``: ``bank.get(idx)`` if
    the caller has fetched it already."""
    if pos_rows is None:
        pos_rows = bank.get(idx)
    pos_rows = pos_rows.to(feats)
    with torch.autocast(feats.device.type, enabled=False):
        return _ShardedSoftmaxCE.apply(feats.float(), bank.bank,
                                       pos_rows.float(), 1.0 / temperature,
                                       int(chunk_size), False, bank.group)


def sharded_sampled_softmax_loss(feats: Tensor, idx: Tensor,
                                 bank: ShardedMemoryBank, temperature: float,
                                 num_negatives: int,
                                 generator: torch.Generator,
                                 chunk_size: int = 65536,
                                 pos_rows: Optional[Tensor] = None) -> Tensor:
    """Per-sample cross-entropy over [positive, m negatives] / tau, the m
    negatives shared by the whole (global) batch and drawn uniformly from
    all N rows minus every positive of the global batch.

    ``generator`` must be in the same state on every rank (e.g. seeded
    alike): all ranks then draw the same negatives without communication,
    and each scores the ones it owns. Collective. ``pos_rows``:
    ``bank.get(idx)`` if the caller has fetched it already.
    """
    all_idx, _ = all_gather_cat(idx.to(bank.bank.device), bank.group)
    neg = sample_negatives(all_idx, num_negatives, bank.length, shared=True,
                           generator=generator)
    own = neg[bank._owned(neg)] - bank.start
    rows = bank.bank.index_select(0, own)
    if pos_rows is None:
        pos_rows = bank.get(idx)
    pos_rows = pos_rows.to(feats)
    with torch.autocast(feats.device.type, enabled=False):
        return _ShardedSoftmaxCE.apply(feats.float(), rows, pos_rows.float(),
                                       1.0 / temperature, int(chunk_size),
                                       True, bank.group)


@torch.no_grad()
def sharded_knn_topk(query: Tensor, bank: ShardedMemoryBank, k: int,
                     query_chunk: int = 1024, ref_chunk: int = 65536):
    """Top-k cosine neighbours of this rank's queries among all N rows:
    (similarities (Q, k) descending, global row indices (Q, k)). Each rank
    searches its shard for all gathered queries; the candidates are
    all-gathered and merged. Collective."""
    from .knn import knn_topk
    q_all, sizes = all_gather_cat(query.float(), bank.group)
    k = min(k, bank.length)
    if bank.end > bank.start:
        s, i = knn_topk(q_all, bank.bank.float(), k, query_chunk, ref_chunk)
        i = i + bank.start
    else:
        s = q_all.new_empty(q_all.shape[0], 0)
        i = torch.empty(q_all.shape[0], 0, dtype=torch.long,
                        device=q_all.device)
    pad = k - s.shape[1]  # a shard shorter than k: pad with -inf
    if pad > 0:
        s = torch.cat([s, s.new_full((s.shape[0], pad), -math.inf)], 1)
        i = torch.cat([i, i.new_full((i.shape[0], pad), -1)], 1)
    _, world = _world(bank.group)
    if world > 1:
        s_list = [torch.empty_like(s) for _ in range(world)]
        i_list = [torch.empty_like(i) for _ in range(world)]
        dist.all_gather(s_list, s.contiguous(), group=bank.group)
        dist.all_gather(i_list, i.contiguous(), group=bank.group)
        s, i = torch.cat(s_list, 1), torch.cat(i_list, 1)
        s, order = s.topk(k, dim=1)
        i = i.gather(1, order)
    rank = _world(bank.group)[0]
    offset = sum(sizes[:rank]) if len(sizes) > 1 else 0
    return s[offset:offset + query.shape[0]], i[offset:offset + query.shape[0]]
