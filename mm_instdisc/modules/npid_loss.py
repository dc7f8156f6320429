"""Non-parametric softmax and its NCE approximation (Wu et al., CVPR 2018).

Plain PyTorch: usable in an mmengine model (``LossHead`` builds it) or in a
lightly / hand-written training loop.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (PeriodicCheck, check_batch, check_finite, check_indices,
                      check_temperature, float32_math)
from .distributed import log_mean_exp_over_ranks


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
        raise ValueError(f'Negatives need a bank of at least 2 rows, got '
                         f'{length}.')
    r = torch.randint(0, length - 1, (pos_idx.numel(), num_negatives),
                      generator=generator, device='cpu').to(device)
    return r + (r >= pos_idx[:, None]).long()


def stream_logsumexp(feats: Tensor, rows: Tensor, inv_tau: float,
                     chunk: int):
    """Running (max, sum of exp) of ``feats @ rows.T * inv_tau`` per query,
    ``chunk`` rows at a time: ``lse = max + log(sum)``.

    Returns (max, sum), both (B, ); with no rows, (-inf, 0). Kept apart so
    that shards of a bank can be combined (``ShardedMemoryBank``).
    """
    b = feats.shape[0]
    run_max = feats.new_full((b, ), -math.inf)
    run_sum = feats.new_zeros(b)
    for start in range(0, rows.shape[0], chunk):
        logits = feats @ rows[start:start + chunk].to(feats).t() * inv_tau
        new_max = torch.maximum(run_max, logits.max(1).values)
        run_sum = (run_sum * torch.exp(run_max - new_max) +
                   torch.exp(logits - new_max[:, None]).sum(1))
        run_max = new_max
    return run_max, run_sum


def stream_softmax_expectation(feats: Tensor, rows: Tensor, lse: Tensor,
                               inv_tau: float, chunk: int) -> Tensor:
    """``sum_j p_j v_j`` over ``rows`` with ``p_j = exp(f.v_j * inv_tau -
    lse)``, ``chunk`` rows at a time: (B, D), the softmax's expected row
    (the gradient of ``lse`` w.r.t. f is this times ``inv_tau``)."""
    expect = torch.zeros_like(feats)
    for start in range(0, rows.shape[0], chunk):
        part = rows[start:start + chunk].to(feats)
        p = torch.exp(feats @ part.t() * inv_tau - lse[:, None])
        expect.addmm_(p, part)
    return expect


class _BankSoftmaxCE(torch.autograd.Function):
    """Per-sample ``logsumexp_j(f.v_j/tau) - f.v_i/tau`` over a bank in chunks.

    Forward streams over ``chunk`` bank rows at a time with a running max and
    sum of exponentials, so the (B, N) logits never exist at once (extra
    memory O(B x chunk)). Backward recomputes each chunk's logits and adds
    ``softmax @ V_chunk``; the gradient w.r.t. f is
    ``(sum_j p_j v_j - v_i) / tau``, identical to autograd through the
    unchunked cross-entropy. The bank gets no gradient.
    """

    @staticmethod
    def forward(ctx, feats: Tensor, bank: Tensor, idx: Tensor, inv_tau: float,
                chunk: int) -> Tensor:
        run_max, run_sum = stream_logsumexp(feats, bank, inv_tau, chunk)
        lse = run_max + run_sum.log()
        pos = (feats * bank.index_select(0, idx).to(feats)).sum(1) * inv_tau
        ctx.save_for_backward(feats, bank, idx, lse)
        ctx.inv_tau, ctx.chunk = inv_tau, chunk
        return lse - pos

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        feats, bank, idx, lse = ctx.saved_tensors
        inv_tau, chunk = ctx.inv_tau, ctx.chunk
        expect = stream_softmax_expectation(feats, bank, lse, inv_tau, chunk)
        grad = (expect - bank.index_select(0, idx).to(feats)) * (
            inv_tau * grad_out[:, None])
        return grad, None, None, None, None


def softmax_over_bank(feats: Tensor, idx: Tensor, bank: Tensor,
                      temperature: float, chunk_size: int = 65536) -> Tensor:
    """Per-sample full non-parametric softmax loss ``-log P(i | f)``, (B, ).

    Exact over all N rows; the bank is read in chunks of ``chunk_size`` rows
    (see :class:`_BankSoftmaxCE`) when N exceeds it, else one product.
    """
    if bank.shape[0] <= chunk_size:
        logits = feats @ bank.to(feats).t() / temperature
        return F.cross_entropy(logits, idx, reduction='none')
    return _BankSoftmaxCE.apply(feats, bank, idx, 1.0 / temperature,
                                int(chunk_size))


def sampled_softmax_from_logits(l_pos: Tensor, l_neg: Tensor) -> Tensor:
    """Per-sample cross-entropy over [positive, m negatives], (B, ), from
    the (B, ) positive and (B, m) negative logits (already divided by tau).
    """
    logits = torch.cat([l_pos[:, None], l_neg], dim=1)
    return torch.logsumexp(logits, dim=1) - l_pos


class LocalBankOps:
    """What :class:`NPIDLoss` asks of a memory bank whose N rows are all on
    this rank (``MemoryBank``, or a raw (N, D) tensor in a
    :class:`TensorBank`). ``ShardedMemoryBank`` answers the same calls
    across the ranks; the loss never asks which one it has.

    Subclasses set ``bank`` (Tensor of shape (N, D)), ``length`` (N) and
    ``feat_dim`` (D).
    """

    bank: Tensor
    length: int
    feat_dim: int

    def rows(self, idx: Tensor) -> Tensor:
        """Rows ``idx`` (B, ) of the bank, not checked (the loss checks its
        indices periodically). Tensor of shape (B, D), no gradient."""
        return self.bank.index_select(0, idx).detach()

    def softmax_loss(self, feats: Tensor, idx: Tensor, temperature: float,
                     chunk_size: int = 65536,
                     pos_rows: Optional[Tensor] = None) -> Tensor:
        """Per-sample ``-log P(i | f)`` of the full softmax over all N rows,
        (B, ) (:func:`softmax_over_bank`; ``pos_rows`` is not needed)."""
        return softmax_over_bank(feats, idx, self.bank.detach(), temperature,
                                 chunk_size)

    def pair_logits(self, feats: Tensor, idx: Tensor, num_negatives: int,
                    shared: bool = False,
                    generator: Optional[torch.Generator] = None,
                    dense_limit: int = 2**25,
                    pos_rows: Optional[Tensor] = None):
        """(B, ) positive and (B, m) noise dot products ``f . v`` (not yet
        divided by tau), the m noise rows drawn by :func:`sample_negatives`
        from ``generator`` (never the positive; one set per batch when
        ``shared``). With one set per sample and ``B * N <= dense_limit``
        they come from one (B, N) product and a gather; ``pos_rows``
        (``rows(idx)``), when given, saves one row gather."""
        bank = self.bank.detach()
        n, m = bank.shape[0], num_negatives
        neg_idx = sample_negatives(idx, m, n, shared, generator)
        if pos_rows is None:
            pos_rows = bank.index_select(0, idx)
        if shared:
            l_pos = (feats * pos_rows.to(feats)).sum(1)
            l_neg = feats @ bank.index_select(0, neg_idx).to(feats).t()
        elif feats.shape[0] * n <= dense_limit:
            # one GEMM, then gather (B, m + 1) logits: cheaper than moving
            # (B, m, D) rows when the bank is small enough
            full = feats @ bank.to(feats).t()
            l_pos = full.gather(1, idx[:, None]).squeeze(1)
            l_neg = full.gather(1, neg_idx)
        else:
            l_pos = (feats * pos_rows.to(feats)).sum(1)
            neg = bank.index_select(0, neg_idx.flatten()).view(
                idx.numel(), m, -1).to(feats)
            l_neg = torch.einsum('bd,bmd->bm', feats, neg)
        return l_pos, l_neg

    def sampled_softmax_loss(self, feats: Tensor, idx: Tensor,
                             temperature: float, num_negatives: int,
                             shared: bool = False,
                             generator: Optional[torch.Generator] = None,
                             chunk_size: int = 65536,
                             dense_limit: int = 2**25,
                             pos_rows: Optional[Tensor] = None) -> Tensor:
        """Per-sample cross-entropy over [positive, m negatives] / tau, (B, ),
        the negatives as in :meth:`pair_logits` (``chunk_size`` is used by
        banks that stream their rows)."""
        l_pos, l_neg = self.pair_logits(feats, idx, num_negatives, shared,
                                        generator, dense_limit, pos_rows)
        inv_tau = 1.0 / temperature
        return sampled_softmax_from_logits(l_pos * inv_tau, l_neg * inv_tau)


class TensorBank(LocalBankOps):
    """A raw (N, D) bank tensor seen as a bank (what :class:`NPIDLoss` makes
    of a Tensor argument). Holds ``bank.detach()``.

    Raises:
        ValueError: If ``bank`` is not of shape (N, D).
    """

    def __init__(self, bank: Tensor) -> None:
        if bank.dim() != 2:
            raise ValueError(f'Expected a memory bank of shape (N, D), got a '
                             f'tensor of shape {tuple(bank.shape)}.')
        self.bank = bank.detach()
        self.length, self.feat_dim = bank.shape


def as_bank(bank):
    """``bank`` if it is a bank object (``MemoryBank``,
    ``ShardedMemoryBank``), else a :class:`TensorBank` over the tensor."""
    return TensorBank(bank) if isinstance(bank, Tensor) else bank


class NPIDLoss(nn.Module):
    r"""Loss of non-parametric instance discrimination against a memory bank.

    Three modes:

    * ``'softmax'``: the paper's objective, the full non-parametric softmax
      :math:`-\\log \\frac{\\exp(v_i^\\top f/\\tau)}{\\sum_j \\exp(v_j^\\top f/\\tau)}`
      over all N bank rows, exact at any N: the bank is streamed in chunks of
      ``chunk_size`` rows with a running log-sum-exp, so peak extra memory is
      O(B x chunk) (ImageNet: N = 1.28M rows cost 32 x 1.28M x 128 x 2 FLOPs
      per GPU batch of 32 forward, a few per cent of a ResNet-50 step).
    * ``'nce'``: noise-contrastive estimation with m noise rows per positive
      drawn from the uniform :math:`P_n = 1/N` (never the positive itself),
      :math:`h(i, v) = P(i|v) / (P(i|v) + m/N)`, :math:`P(i|v) =
      \\exp(v^\\top f/\\tau)/Z` and loss
      :math:`-\\log h(i, v_i) - \\sum_{j} \\log(1 - h(j, v_j))`.
      Z is the paper's Monte-Carlo estimate (eq. 8)
      :math:`N \\cdot \\mathrm{mean}_j \\exp(v_j^\\top f/\\tau)` over the noise
      pairs, kept in log space (``log_z`` buffer, checkpointed; averaged
      over ranks), and

      - ``z_mode='batch'``: re-estimated on every batch, one Z for the batch;
      - ``z_mode='sample'``: eq. 8 as written, one estimate
        :math:`Z_i = \frac{N}{m} \sum_k \exp(v_{j_k}^\top f_i/\tau)` per
        sample from its own noise rows (the buffer keeps their mean, for
        logging);
      - ``z_mode='ema'``: an exponential moving average (``z_momentum``), as
        Kaiming He suggested for CMC;
      - ``z_mode='once'``: estimated on the first batch(es) and frozen, the
        official code's shortcut; ``z_warmup`` > 0 re-estimates it on every
        batch for that many calls before freezing it.

      See ``docs/npid.md`` for why a frozen Z collapses on small data.
    * ``'sampled_softmax'``: cross-entropy over [positive, m negatives] / tau
      (what mmselfsup's NPID, VISSL's NPID++ and PIRL train), with the
      negatives drawn as for NCE, so never the positive itself.

    All modes compute logits, Z and log-sum-exps in float32 even under
    fp16/bf16 autocast (``exp(1/0.07) * N`` overflows fp16). For NCE and the
    sampled softmax with one noise set per sample, the (B, m) noise logits
    come from one (B, N) product followed by a gather when ``B * N <=
    dense_logits_limit`` (a GEMM instead of a (B, m, D) row gather), else
    from gathered rows. ``shared_negatives=True`` draws one noise set per
    batch (a (B, D) x (D, m) product).

    Every mode adds the paper's proximal term
    :math:`\\lambda \\|f_i - v_i\\|^2` (``prox_weight``; missing from the
    official code), where :math:`v_i` is the bank row from the previous
    visit.

    After each call, ``last_stats`` holds detached diagnostics (no device
    sync): ``log_z``, ``pos_h`` (mean h of the positives) and ``neg_h`` (mean
    h of the noise pairs) for NCE, ``pos_prob`` for the softmax modes.

    Args:
        mode (str): ``'softmax'``, ``'nce'`` or ``'sampled_softmax'``.
            Defaults to ``'nce'``.
        num_negatives (int): m, noise samples per positive (NCE and sampled
            softmax). Defaults to 4096.
        temperature (float): tau. Defaults to 0.07.
        z_mode (str): ``'sample'``, ``'batch'``, ``'ema'`` or ``'once'``.
            Defaults to ``'sample'`` (``'once'`` is the official code's, and
            collapses on small data; see ``docs/npid.md``).
        z_momentum (float): EMA weight on the old Z. Defaults to 0.99.
        z_warmup (int): With ``z_mode='once'``, calls during which Z is
            re-estimated on each batch before it is frozen. Defaults to 0.
        prox_weight (float): lambda of the proximal term. Defaults to 0.
        shared_negatives (bool): One noise set per batch instead of one per
            positive. Defaults to False.
        chunk_size (int): Bank rows per chunk of the full softmax. Defaults
            to 65536.
        dense_logits_limit (int): Largest B * N for which per-sample noise
            logits are gathered from a (B, N) product. Defaults to 2**25.
        check_interval (int): Calls between the checks that read values back
            from the device (NaN in features or bank, index range); the first
            call is always checked. Defaults to 100.

    Examples:
        >>> loss_fn = NPIDLoss(mode='nce', num_negatives=8, temperature=0.1)
        >>> bank = torch.nn.functional.normalize(torch.randn(20, 4), dim=1)
        >>> f = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
        >>> loss = loss_fn(f, torch.tensor([0, 5, 9]), bank)
        >>> bool(torch.isfinite(loss))
        True

    Raises:
        ValueError: On an unknown mode, a non-positive or NaN temperature, m
            < 1 or m >= N, an empty batch, NaN in the features or the bank,
            or indices outside the bank.
    """

    MODES = ('nce', 'softmax', 'sampled_softmax')
    Z_MODES = ('once', 'ema', 'batch', 'sample')
    log_z: Tensor
    z_calls: Tensor

    def __init__(self, mode: str = 'nce', num_negatives: int = 4096,
                 temperature: float = 0.07, z_mode: str = 'sample',
                 z_momentum: float = 0.99, z_warmup: int = 0,
                 prox_weight: float = 0.0, shared_negatives: bool = False,
                 chunk_size: int = 65536, dense_logits_limit: int = 2**25,
                 check_interval: int = 100) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f'Illegal mode: {mode!r}; expected one of '
                             f'{self.MODES}.')
        self.temperature = check_temperature('temperature', temperature)
        if mode != 'softmax' and num_negatives < 1:
            raise ValueError(f'Illegal num_negatives: {num_negatives}; mode '
                             f'{mode!r} needs at least 1 noise sample.')
        if z_mode not in self.Z_MODES:
            raise ValueError(f'Illegal z_mode: {z_mode!r}; expected one of '
                             f'{self.Z_MODES}.')
        if not 0.0 <= z_momentum < 1.0:
            raise ValueError(f'Illegal z_momentum: {z_momentum}; expected [0, 1).')
        if z_warmup < 0:
            raise ValueError(f'Illegal z_warmup: {z_warmup}; must be >= 0.')
        if not prox_weight >= 0:
            raise ValueError(f'Illegal prox_weight: {prox_weight}; must be >= 0.')
        if chunk_size < 1:
            raise ValueError(f'Illegal chunk_size: {chunk_size}; must be >= 1.')
        self.mode = mode
        self.num_negatives = int(num_negatives)
        self.z_mode = z_mode
        self.z_momentum = float(z_momentum)
        self.z_warmup = int(z_warmup)
        self.prox_weight = float(prox_weight)
        self.shared_negatives = bool(shared_negatives)
        self.chunk_size = int(chunk_size)
        self.dense_logits_limit = int(dense_logits_limit)
        self._check = PeriodicCheck(check_interval)
        self.generator: Optional[torch.Generator] = None
        self.last_stats: dict = {}
        # log Z; NaN means "not estimated yet". float32 whatever the module's
        # dtype would be under .half(): Z of a 65k bank overflows fp16.
        self.register_buffer('log_z', torch.tensor(math.nan), persistent=True)
        self.register_buffer('z_calls', torch.tensor(0, dtype=torch.long),
                             persistent=True)

    @property
    def z(self) -> Tensor:
        """The normalising constant Z (NaN before the first NCE batch)."""
        return self.log_z.double().exp()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before Z moved to log space hold ``z`` (< 0:
        # not estimated yet) and no ``z_calls``
        old = state_dict.pop(prefix + 'z', None)
        if old is not None and prefix + 'log_z' not in state_dict:
            state_dict[prefix + 'log_z'] = (
                old.double().log().float() if old > 0 else
                torch.tensor(math.nan))
            state_dict.setdefault(prefix + 'z_calls', torch.tensor(
                int(old > 0), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, *args, **kwargs):
        # keep log Z in at least float32 through .half() / .bfloat16()
        out = super()._apply(fn, *args, **kwargs)
        if self.log_z.dtype in (torch.float16, torch.bfloat16):
            self.log_z = self.log_z.float()
        return out

    # ----------------------------------------------------------- Z
    @torch.no_grad()
    def _estimate_log_z(self, neg_logits: Tensor, length: int) -> Tensor:
        """log Z from this batch's noise pairs, averaged over ranks."""
        # N * mean(exp(l)) in log space: exp(1/0.01) would overflow
        log_z = (math.log(length) + torch.logsumexp(neg_logits.flatten(), 0) -
                 math.log(neg_logits.numel()))
        return log_mean_exp_over_ranks(log_z)

    @torch.no_grad()
    def _update_z(self, neg_logits: Tensor, length: int) -> Tensor:
        """Update the stored log Z as ``z_mode`` says; returns log Z to use:
        a scalar, or (B, 1) with ``z_mode='sample'``."""
        if self.z_mode == 'sample':
            per_row = (math.log(length) + torch.logsumexp(neg_logits, 1) -
                       math.log(neg_logits.shape[1]))
            self.log_z.copy_(per_row.mean())
            if self.training:
                self.z_calls.add_(1)
            return per_row[:, None]
        batch = self._estimate_log_z(neg_logits, length)
        old = self.log_z
        unset = torch.isnan(old)
        if self.z_mode == 'batch':
            new = batch
        elif self.z_mode == 'ema':
            ema = torch.logaddexp(old + math.log(self.z_momentum),
                                  batch + math.log1p(-self.z_momentum)) \
                if self.z_momentum > 0 else batch
            new = torch.where(unset, batch, ema if self.training else old)
        else:  # once, after an optional warm-up of per-batch estimates
            warm = self.z_calls < self.z_warmup
            new = torch.where(unset | (warm & self.training), batch, old)
        self.log_z.copy_(new)
        if self.training:
            self.z_calls.add_(1)
        return self.log_z.clone()

    # ----------------------------------------------------------- logits
    def _pair_logits(self, feats: Tensor, idx: Tensor, bank,
                     pos_rows: Optional[Tensor] = None):
        """(B, ) positive and (B, m) noise logits / tau from the bank."""
        l_pos, l_neg = bank.pair_logits(feats, idx, self.num_negatives,
                                        self.shared_negatives, self.generator,
                                        self.dense_logits_limit, pos_rows)
        inv_tau = 1.0 / self.temperature
        return l_pos * inv_tau, l_neg * inv_tau

    def nce(self, feats: Tensor, idx: Tensor, bank) -> Tensor:
        """NCE loss per sample. Tensor of shape (B, )."""
        bank = as_bank(bank)
        l_pos, l_neg = self._pair_logits(feats, idx, bank)
        return self._nce_from_logits(l_pos, l_neg, bank.length)

    def _nce_from_logits(self, l_pos: Tensor, l_neg: Tensor,
                         n: int) -> Tensor:
        """NCE per sample from (B, ) positive and (B, m) noise logits / tau
        over a bank of ``n`` rows; updates Z."""
        m = l_neg.shape[1]
        log_z = self._update_z(l_neg.detach(), n)
        # log P(i|v) - log(m * Pn) is the logit of h
        shift = log_z + math.log(m / n)  # scalar or (B, 1)
        pos_term = F.logsigmoid(l_pos - shift.squeeze(-1))
        neg_term = F.logsigmoid(shift - l_neg)
        with torch.no_grad():
            self.last_stats = dict(
                log_z=log_z.mean(), pos_h=pos_term.exp().mean(),
                neg_h=-torch.expm1(neg_term).mean())
        return -(pos_term + neg_term.sum(1))

    def sampled_softmax(self, feats: Tensor, idx: Tensor, bank,
                        pos_rows: Optional[Tensor] = None) -> Tensor:
        """Cross-entropy over [positive, m negatives] / tau, (B, )."""
        loss = as_bank(bank).sampled_softmax_loss(
            feats, idx, self.temperature, self.num_negatives,
            self.shared_negatives, self.generator, self.chunk_size,
            self.dense_logits_limit, pos_rows)
        with torch.no_grad():
            self.last_stats = dict(pos_prob=torch.exp(-loss).mean())
        return loss

    def softmax(self, feats: Tensor, idx: Tensor, bank,
                pos_rows: Optional[Tensor] = None) -> Tensor:
        """Full non-parametric softmax loss per sample, (B, )."""
        loss = as_bank(bank).softmax_loss(feats, idx, self.temperature,
                                          self.chunk_size, pos_rows)
        with torch.no_grad():
            self.last_stats = dict(pos_prob=torch.exp(-loss).mean())
        return loss

    def _check_inputs(self, feats: Tensor, idx: Tensor, bank) -> None:
        check_batch('NPID features', feats)
        if feats.shape[1] != bank.feat_dim:
            raise ValueError(f'Expected feats (B, D) and bank (N, D), got '
                             f'{tuple(feats.shape)} and '
                             f'{(bank.length, bank.feat_dim)}.')
        if idx.shape != (feats.shape[0], ):
            raise ValueError(f'Expected one index per feature, got idx of shape '
                             f'{tuple(idx.shape)} for {feats.shape[0]} features.')
        n = bank.length
        if self.mode != 'softmax' and self.num_negatives >= n:
            raise ValueError(
                f'num_negatives={self.num_negatives} >= bank length {n}: m '
                'noise rows must be drawn from the other N - 1 rows. Use '
                "mode='softmax' (exact over the whole bank) or a smaller m.")
        if not self._check.due():
            return
        check_finite('NPID features', feats)
        check_finite('NPID memory bank', bank.bank)  # this rank's rows
        check_indices(idx, n, 'Bank')

    def forward(self, feats: Tensor, idx: Tensor, bank) -> Tensor:
        """Mean loss over the batch.

        The bank is asked for its rows and scores through one small
        interface (``rows``, ``softmax_loss``, ``pair_logits``,
        ``sampled_softmax_loss``; :class:`LocalBankOps`), which
        ``MemoryBank`` and ``ShardedMemoryBank`` both answer, the latter
        collectively across the ranks with the values and gradients of the
        replicated bank on the gathered batch (every rank then calls the
        loss with its own batch).

        Args:
            feats (Tensor): L2-normalised embeddings f, shape (B, D).
            idx (Tensor): Each embedding's image index in the bank, (B, ).
            bank (Tensor | MemoryBank | ShardedMemoryBank): Memory bank V
                of N rows, not differentiated; a Tensor of shape (N, D) of
                any floating dtype (read in float32) or a bank module.

        Returns:
            Tensor: Scalar loss (float32, or float64 for float64 inputs).
        """
        bank = as_bank(bank)
        idx = idx.to(bank.bank.device).long()
        self._check_inputs(feats, idx, bank)
        with float32_math(feats) as (f32, ):
            # positives (and the proximal term's previous rows), read once
            pos_rows = bank.rows(idx)
            if self.mode == 'softmax':
                loss = self.softmax(f32, idx, bank, pos_rows)
            elif self.mode == 'nce':
                l_pos, l_neg = self._pair_logits(f32, idx, bank, pos_rows)
                loss = self._nce_from_logits(l_pos, l_neg, bank.length)
            else:
                loss = self.sampled_softmax(f32, idx, bank, pos_rows)
            if self.prox_weight > 0:
                prev = pos_rows.to(f32)
                loss = loss + self.prox_weight * (f32 - prev).pow(2).sum(1)
            return loss.mean()

    def extra_repr(self) -> str:
        return (f'mode={self.mode}, num_negatives={self.num_negatives}, '
                f'temperature={self.temperature}, z_mode={self.z_mode}, '
                f'z_warmup={self.z_warmup}, prox_weight={self.prox_weight}, '
                f'shared_negatives={self.shared_negatives}, '
                f'chunk_size={self.chunk_size}')
