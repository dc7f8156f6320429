"""Non-parametric softmax and its NCE approximation (Wu et al., CVPR 2018).

Plain PyTorch: usable in an mmengine model (``NPIDHead`` wraps it) or in a
lightly / hand-written training loop.
"""
import math
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .memory_bank import _check_finite


def sample_negatives(pos_idx: Tensor, num_negatives: int, length: int,
                     shared: bool = False,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw noise indices uniformly from ``[0, length)`` minus the positive.

    No rejection loop: uniform draws from a range shortened by the excluded
    indices are shifted past them, which is exactly uniform on the rest.

    Args:
        pos_idx (Tensor): Positive indices, shape (B, ).
        num_negatives (int): m, negatives per positive.
        length (int): N, the bank length.
        shared (bool): If True, draw one set of m indices for the whole batch
            that avoids *every* positive of the batch. Defaults to False
            (an independent set per positive, as in the paper).
        generator (torch.Generator, optional): Source of randomness.

    Returns:
        Tensor: (B, m) indices, or (m, ) when ``shared``.

    Examples:
        >>> neg = sample_negatives(torch.tensor([0, 3]), 5, length=4)
        >>> bool((neg != torch.tensor([[0], [3]])).all())
        True
    """
    device = pos_idx.device
    if shared:
        excl = torch.unique(pos_idx)  # sorted, (S, )
        free = length - excl.numel()
        if free < 1:
            raise ValueError(f'Cannot draw shared negatives: the batch covers '
                             f'all {length} bank rows.')
        r = torch.randint(0, free, (num_negatives, ), generator=generator,
                          device='cpu').to(device)
        shift = excl - torch.arange(excl.numel(), device=device)
        return r + torch.searchsorted(shift, r, right=True)
    if length < 2:
        raise ValueError('NCE needs a bank of at least 2 rows.')
    r = torch.randint(0, length - 1, (pos_idx.numel(), num_negatives),
                      generator=generator, device='cpu').to(device)
    return r + (r >= pos_idx[:, None]).long()


class NPIDLoss(nn.Module):
    """Loss of non-parametric instance discrimination against a memory bank.

    Two modes:

    * ``'softmax'``: the full non-parametric softmax
      :math:`-\\log \\frac{\\exp(v_i^\\top f/\\tau)}{\\sum_j \\exp(v_j^\\top f/\\tau)}`
      over all N bank rows.
    * ``'nce'``: noise-contrastive estimation with m noise rows per positive
      drawn from the uniform :math:`P_n = 1/N` (never the positive itself),
      :math:`h(i, v) = P(i|v) / (P(i|v) + m/N)`, :math:`P(i|v) =
      \\exp(v^\\top f/\\tau)/Z` and loss
      :math:`-\\log h(i, v_i) - \\sum_{j} \\log(1 - h(j, v_j))`.
      Z is a Monte-Carlo estimate :math:`N \\cdot \\mathrm{mean}_j
      \\exp(v_j^\\top f/\\tau)` over the noise pairs, either estimated once on
      the first batch and frozen (``z_mode='once'``, the paper and official
      code) or an exponential moving average (``z_mode='ema'``). Z is a
      buffer, so it is checkpointed. In distributed runs the batch estimate
      is averaged over ranks, so every rank uses the same Z.

    Both modes add the paper's proximal term
    :math:`\\lambda \\|f_i - v_i\\|^2` (``prox_weight``; missing from the
    official code), where :math:`v_i` is the bank row from the previous
    visit.

    Args:
        mode (str): ``'nce'`` or ``'softmax'``. Defaults to ``'nce'``.
        num_negatives (int): m, noise samples per positive (NCE). Defaults
            to 4096.
        temperature (float): tau. Defaults to 0.07.
        z_mode (str): ``'once'`` or ``'ema'``. Defaults to ``'once'``.
        z_momentum (float): EMA weight on the old Z. Defaults to 0.99.
        prox_weight (float): lambda of the proximal term. Defaults to 0.
        shared_negatives (bool): One noise set per batch instead of one per
            positive (much faster, a (B, D) x (D, m) product instead of a
            (B, m, D) gather). Defaults to False.

    Examples:
        >>> loss_fn = NPIDLoss(mode='nce', num_negatives=8, temperature=0.1)
        >>> bank = torch.nn.functional.normalize(torch.randn(20, 4), dim=1)
        >>> f = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
        >>> loss = loss_fn(f, torch.tensor([0, 5, 9]), bank)
        >>> bool(torch.isfinite(loss))
        True

    Raises:
        ValueError: On an unknown mode, a non-positive temperature or m, or
            non-finite features.
    """

    z: Tensor

    def __init__(self, mode: str = 'nce', num_negatives: int = 4096,
                 temperature: float = 0.07, z_mode: str = 'once',
                 z_momentum: float = 0.99, prox_weight: float = 0.0,
                 shared_negatives: bool = False) -> None:
        super().__init__()
        if mode not in ('nce', 'softmax'):
            raise ValueError(f"Illegal mode: {mode!r}; expected 'nce' or "
                             "'softmax'.")
        if temperature <= 0:
            raise ValueError(f'Illegal temperature: {temperature}; must be > 0.')
        if mode == 'nce' and num_negatives < 1:
            raise ValueError(f'Illegal num_negatives: {num_negatives}; NCE '
                             'needs at least 1 noise sample.')
        if z_mode not in ('once', 'ema'):
            raise ValueError(f"Illegal z_mode: {z_mode!r}; expected 'once' or "
                             "'ema'.")
        if not 0.0 <= z_momentum < 1.0:
            raise ValueError(f'Illegal z_momentum: {z_momentum}; expected [0, 1).')
        if prox_weight < 0:
            raise ValueError(f'Illegal prox_weight: {prox_weight}; must be >= 0.')
        self.mode = mode
        self.num_negatives = int(num_negatives)
        self.temperature = float(temperature)
        self.z_mode = z_mode
        self.z_momentum = float(z_momentum)
        self.prox_weight = float(prox_weight)
        self.shared_negatives = bool(shared_negatives)
        self.generator: Optional[torch.Generator] = None
        # Z < 0 means "not estimated yet".
        self.register_buffer('z', torch.tensor(-1.0), persistent=True)

    def softmax_logits(self, feats: Tensor, bank: Tensor) -> Tensor:
        """Logits over the whole bank. Tensor of shape (B, N)."""
        return feats @ bank.detach().t() / self.temperature

    @torch.no_grad()
    def _update_z(self, neg_logits: Tensor, length: int) -> Tensor:
        """Monte-Carlo Z from this batch's noise pairs; returns Z to use."""
        # N * mean(exp(l)), computed in log space: exp(1/0.01) would overflow.
        log_z = (math.log(length) + torch.logsumexp(neg_logits.flatten(), 0) -
                 math.log(neg_logits.numel()))
        if dist.is_available() and dist.is_initialized():
            # Average the estimate over ranks so every rank has the same Z.
            z_batch = log_z.exp().double()
            dist.all_reduce(z_batch)
            log_z = (z_batch / dist.get_world_size()).log().float()
        if self.z.item() < 0:
            self.z.fill_(log_z.exp().item())
        elif self.z_mode == 'ema' and self.training:
            self.z.mul_(self.z_momentum).add_(
                (1 - self.z_momentum) * log_z.exp().item())
        return self.z

    def nce(self, feats: Tensor, idx: Tensor, bank: Tensor) -> Tensor:
        """NCE loss per sample. Tensor of shape (B, )."""
        n = bank.shape[0]
        m = self.num_negatives
        bank = bank.detach()
        neg_idx = sample_negatives(idx, m, n, self.shared_negatives,
                                   self.generator)
        # positive logits: (B, )
        l_pos = (feats * bank.index_select(0, idx)).sum(1) / self.temperature
        if self.shared_negatives:
            # negative logits: (B, m), one (D, m) block for the batch
            l_neg = feats @ bank.index_select(0, neg_idx).t() / self.temperature
        else:
            # negative logits: (B, m), gathers (B, m, D)
            neg = bank.index_select(0, neg_idx.flatten()).view(
                idx.numel(), m, -1)
            l_neg = torch.einsum('bd,bmd->bm', feats, neg) / self.temperature
        z = self._update_z(l_neg.detach(), n)
        # log P(i|v) - log(m * Pn) is the logit of h
        shift = torch.log(z) + math.log(m / n)
        return -(F.logsigmoid(l_pos - shift) +
                 F.logsigmoid(shift - l_neg).sum(1))

    def forward(self, feats: Tensor, idx: Tensor, bank: Tensor) -> Tensor:
        """Mean loss over the batch.

        Args:
            feats (Tensor): L2-normalised embeddings f, shape (B, D).
            idx (Tensor): Each embedding's image index in the bank, (B, ).
            bank (Tensor): Memory bank V, shape (N, D), not differentiated.

        Returns:
            Tensor: Scalar loss.
        """
        _check_finite('NPID features', feats)
        if feats.dim() != 2 or bank.dim() != 2 or feats.shape[1] != bank.shape[1]:
            raise ValueError(f'Expected feats (B, D) and bank (N, D), got '
                             f'{tuple(feats.shape)} and {tuple(bank.shape)}.')
        if idx.shape != (feats.shape[0], ):
            raise ValueError(f'Expected one index per feature, got idx of shape '
                             f'{tuple(idx.shape)} for {feats.shape[0]} features.')
        idx = idx.to(bank.device).long()
        if idx.numel() and (int(idx.min()) < 0 or
                            int(idx.max()) >= bank.shape[0]):
            raise ValueError(
                f'Bank index out of range [0, {bank.shape[0]}): min '
                f'{int(idx.min())}, max {int(idx.max())}. Does the bank length '
                'match the training set size?')
        if self.mode == 'softmax':
            loss = F.cross_entropy(self.softmax_logits(feats, bank), idx,
                                   reduction='none')
        else:
            loss = self.nce(feats, idx, bank)
        if self.prox_weight > 0:
            prev = bank.detach().index_select(0, idx)
            loss = loss + self.prox_weight * (feats - prev).pow(2).sum(1)
        return loss.mean()

    def extra_repr(self) -> str:
        return (f'mode={self.mode}, num_negatives={self.num_negatives}, '
                f'temperature={self.temperature}, z_mode={self.z_mode}, '
                f'prox_weight={self.prox_weight}, '
                f'shared_negatives={self.shared_negatives}')
