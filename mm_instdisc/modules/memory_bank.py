"""Per-image memory bank for non-parametric instance discrimination (plain PyTorch)."""
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import PeriodicCheck, check_finite, check_indices
from .distributed import all_gather_cat, world
from .npid_loss import LocalBankOps

_check_finite = check_finite  # old name, kept for importers


def check_bank_args(length: int, feat_dim: int, momentum: float) -> None:
    """Positive sizes and a momentum (weight on the old row) in [0, 1)."""
    if length <= 0 or feat_dim <= 0:
        raise ValueError(f'Illegal memory bank size: length={length}, '
                         f'feat_dim={feat_dim}; both must be positive.')
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f'Illegal momentum: {momentum}; expected a value '
                         'in [0, 1) (the weight kept on the old entry).')


def first_occurrence(idx: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct index.

    Distributed samplers pad the last batch with repeated images, so an
    all-gathered batch may name a row twice; writing it once keeps the
    update deterministic and identical on every rank.
    """
    uniq, inverse = torch.unique(idx, return_inverse=True)
    pos = torch.arange(idx.numel(), device=idx.device)
    first = torch.full((uniq.numel(), ), idx.numel(), device=idx.device,
                       dtype=pos.dtype)
    first.scatter_reduce_(0, inverse, pos, reduce='amin')
    return first


@torch.no_grad()
def momentum_update_rows(bank: Tensor, rows: Tensor, feats: Tensor,
                         momentum: float) -> None:
    """``bank[rows] <- normalise(m * bank[rows] + (1 - m) * feats)`` in
    float32, stored in the bank's dtype (``feats`` unit rows, distinct
    ``rows``)."""
    old = bank.index_select(0, rows).float()
    new = F.normalize(momentum * old + (1 - momentum) * feats.float(), dim=1)
    bank.index_copy_(0, rows, new.to(bank.dtype))


@torch.no_grad()
def check_replicas_equal(bank: Tensor, group=None) -> None:
    """Raise if the ranks' copies of ``bank`` differ (exact checksums; one
    tiny all-gather). Nothing to compare in one process."""
    _, size = world(group)
    if size == 1:
        return
    w = torch.arange(1, bank.shape[0] + 1, dtype=torch.float64,
                     device=bank.device)
    b = bank.double()
    sums = torch.stack([b.sum(), (w @ b).sum()])
    all_sums = [torch.empty_like(sums) for _ in range(size)]
    dist.all_gather(all_sums, sums, group=group)
    if any(not torch.equal(all_sums[0], s) for s in all_sums[1:]):
        raise RuntimeError('Memory banks differ across ranks: checksums '
                           f'{[s.tolist() for s in all_sums]}')


class MemoryBank(LocalBankOps, nn.Module):
    """One L2-normalised feature row per training image, as in NPID.

    The bank is a *persistent* buffer, so it follows ``.to()``, is saved in
    ``state_dict()`` (and so in every checkpoint) and is restored on resume.

    Update convention (the official NPID code's): ``momentum`` is the weight
    kept on the OLD entry,

    .. math:: v_i \\leftarrow \\frac{m v_i + (1 - m) f_i}{\\|m v_i + (1 - m) f_i\\|}

    with ``m = 0.5`` by default. (mmselfsup's ``momentum`` means the weight on
    the new feature, i.e. ``1 - m`` here.)

    The whole bank is on every rank. :meth:`update` and :meth:`fill` take
    this rank's batch and all-gather the (index, feature) pairs of every
    rank (in rank order) when torch.distributed runs, so every rank writes
    the same rows and the copies stay identical (as lightly's
    ``MemoryBankModule.update`` gathers itself). :class:`ShardedMemoryBank`
    has the same interface (``update``, ``fill``, ``get``/``rows``,
    ``stats``, ``gather_to``, ``checkpoint_state``, ``broadcast_from``,
    ``check_sync``, ``rank_local_buffers`` and the loss's
    :class:`~mm_instdisc.modules.npid_loss.LocalBankOps` calls), so no
    caller asks which bank it has.

    Args:
        length (int): Number of rows N, i.e. the training set size.
        feat_dim (int): Feature dimension D. Defaults to 128.
        momentum (float): Weight on the old entry, in [0, 1). Defaults to 0.5.
        check_interval (int): ``update`` calls between the checks that read
            values back from the device (index range, NaN in the features);
            the first call is always checked. Defaults to 100.

    Examples:
        >>> bank = MemoryBank(length=10, feat_dim=4)
        >>> bank.bank.shape
        torch.Size([10, 4])
        >>> f = torch.nn.functional.normalize(torch.randn(2, 4), dim=1)
        >>> bank.update(torch.tensor([3, 7]), f)
        >>> bool(torch.allclose(bank.bank.norm(dim=1), torch.ones(10)))
        True

    Raises:
        ValueError: On a non-positive size, a momentum outside [0, 1),
            indices out of range or non-finite features.
    """

    bank: Tensor

    def __init__(self, length: int, feat_dim: int = 128,
                 momentum: float = 0.5, check_interval: int = 100) -> None:
        super().__init__()
        check_bank_args(length, feat_dim, momentum)
        self.length = int(length)
        self.feat_dim = int(feat_dim)
        self.momentum = float(momentum)
        self._check = PeriodicCheck(check_interval)
        self.register_buffer('bank', torch.empty(self.length, self.feat_dim),
                             persistent=True)
        self.reset_random()

    @torch.no_grad()
    def reset_random(self, generator: Optional[torch.Generator] = None) -> None:
        """Fill the bank with random unit rows (Gaussian, then normalised)."""
        rows = torch.randn(self.length, self.feat_dim, generator=generator,
                           dtype=self.bank.dtype)
        self.bank.copy_(F.normalize(rows, dim=1).to(self.bank.device))

    def _check_indices(self, idx: Tensor) -> None:
        check_indices(idx, self.length)

    _first_occurrence = staticmethod(first_occurrence)

    def get(self, idx: Tensor) -> Tensor:
        """Rows ``idx`` of the bank. Tensor of shape (B, D), no gradient."""
        self._check_indices(idx)
        return self.bank.index_select(0, idx.to(self.bank.device)).detach()

    @staticmethod
    def _gather(idx: Tensor, feats: Tensor) -> Tuple[Tensor, Tensor]:
        """Every rank's (idx, feats), in rank order (ranks may hold
        different B); this rank's own in one process."""
        if world()[1] == 1:
            return idx, feats
        all_idx, _ = all_gather_cat(idx)
        all_feats, _ = all_gather_cat(feats.detach().contiguous())
        return all_idx, all_feats

    @torch.no_grad()
    def update(self, idx: Tensor, feats: Tensor) -> None:
        """Momentum-update rows ``idx`` with features ``feats`` (B, D).

        ``idx``/``feats`` are this rank's batch: with torch.distributed the
        batches of all ranks are gathered and applied on every rank
        (collective). ``feats`` are L2-normalised here, so raw embeddings
        may be passed.
        """
        if feats.shape != (idx.numel(), self.feat_dim):
            raise ValueError(f'Expected features of shape ({idx.numel()}, '
                             f'{self.feat_dim}), got {tuple(feats.shape)}.')
        idx, feats = self._gather(idx, feats)
        if self._check.due():
            self._check_indices(idx)
            check_finite('Features passed to MemoryBank.update', feats)
        idx = idx.to(self.bank.device)
        feats = F.normalize(feats.detach().float(), dim=1)
        keep = self._first_occurrence(idx)
        momentum_update_rows(self.bank, idx[keep], feats[keep],
                             self.momentum)

    @torch.no_grad()
    def fill(self, idx: Tensor, feats: Tensor) -> None:
        """Overwrite rows ``idx`` with normalised ``feats`` (initialisation);
        this rank's batch, gathered over the ranks as in :meth:`update`
        (collective)."""
        idx, feats = self._gather(idx, feats)
        self._check_indices(idx)
        check_finite('Features passed to MemoryBank.fill', feats)
        idx = idx.to(self.bank.device)
        feats = F.normalize(feats.detach().to(self.bank), dim=1)
        keep = self._first_occurrence(idx)
        self.bank.index_copy_(0, idx[keep], feats[keep])

    @torch.no_grad()
    def stats(self) -> dict:
        """Summary numbers for logging: row norms and spread of the bank."""
        norms = self.bank.norm(dim=1)
        mean_vec = self.bank.mean(dim=0)
        return dict(norm_min=norms.min().item(), norm_max=norms.max().item(),
                    mean_norm=mean_vec.norm().item())

    def gather_to(self, dst: int = 0) -> Optional[Tensor]:
        """The whole (N, D) bank: every rank holds it, so no communication
        (and it is returned on every rank, not only ``dst``)."""
        return self.bank.detach()

    def checkpoint_state(self, collective: bool = True
                         ) -> Optional[Dict[str, Tensor]]:
        """Entries that replace this bank's own in a checkpoint so that it
        holds the whole bank: none, ``state_dict()`` already does."""
        return {}

    @torch.no_grad()
    def broadcast_from(self, src: int = 0) -> None:
        """Make every rank's bank rank ``src``'s (collective; nothing to do
        in one process)."""
        if world()[1] > 1:
            dist.broadcast(self.bank, src=src)

    def check_sync(self) -> None:
        """Raise if the ranks' banks differ (:func:`check_replicas_equal`)."""
        check_replicas_equal(self.bank)

    def rank_local_buffers(self) -> Tuple[str, ...]:
        """Buffers that differ between ranks by design (DDP must neither
        broadcast nor compare them): none, the bank is replicated."""
        return ()

    def extra_repr(self) -> str:
        return (f'length={self.length}, feat_dim={self.feat_dim}, '
                f'momentum={self.momentum}')
