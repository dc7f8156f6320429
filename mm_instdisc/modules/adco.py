"""Adversarial negatives and the adversarial contrastive loss of AdCo.

Plain PyTorch: usable in an mmengine model (``AdCo`` and its ``LossHead`` wrap
it) or in a hand-written training loop.

AdCo (Hu et al., CVPR 2021) trains two players on one loss. The encoder
minimises the contrastive cross-entropy of each query against its positive
key, the other keys of the (global) batch and K learned negatives
:math:`\\hat w_j = w_j / \\|w_j\\|` at temperature ``t``; the negatives
*maximise* the same cross-entropy evaluated at temperature ``mem_t``.
:class:`AdCoLoss` returns both values from one forward, each with the
gradient of its own player only, so one ``backward`` of their sum gives
the encoder its descent gradient and the negatives the gradient that the
optimizer turns into an ascent step (``maximize=True`` in their param group).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (PeriodicCheck, check_batch, check_finite,
                      check_temperature, float32_math)
from .info_nce import info_nce_from_logits


class AdversarialNegatives(nn.Module):
    """K learnable negative examples, the columns of a (D, K) parameter.

    The parameter ``weight`` holds raw columns :math:`w_j`; every use
    (``forward``) L2-normalises them, so only their directions matter and
    the gradient reaching ``weight`` carries the normalisation Jacobian
    :math:`(I - \\hat w_j \\hat w_j^\\top) / \\|w_j\\|`.

    Two initialisations:

    * ``'keys'`` (the official code's default): columns start random and are
      overwritten, in order, by the keys of the first training iterations
      (:meth:`init_from_keys`, a running pointer ``num_filled``). The
      negatives count as initialised once all K columns are filled.
    * ``'random'``: random unit columns, initialised at once. (The official
      code's random alternative keeps un-normalised Gaussian columns of norm
      about :math:`\\sqrt{D}`, which shrinks the effective ascent step by
      about D; unit columns make a given learning rate mean the same in both
      modes.)

    ``weight`` is a parameter and ``num_filled`` a persistent buffer, so both
    are checkpointed and a run resumed in the middle of the initialisation
    continues it.

    Args:
        num_negatives (int): K, the number of negatives. Defaults to 65536.
        feat_dim (int): D, the embedding size. Defaults to 128.
        init (str): ``'keys'`` or ``'random'``. Defaults to ``'keys'``.

    Examples:
        >>> negatives = AdversarialNegatives(num_negatives=5, feat_dim=3)
        >>> negatives().shape
        torch.Size([3, 5])
        >>> negatives.initialised
        False
        >>> negatives.init_from_keys(torch.randn(4, 3))
        4
        >>> negatives.init_from_keys(torch.randn(4, 3))  # one column left
        1
        >>> negatives.initialised
        True
        >>> bool(torch.allclose(negatives().norm(dim=0), torch.ones(5)))
        True

    Raises:
        ValueError: On a non-positive size, an unknown ``init`` or keys of
            the wrong shape or with non-finite values (checked on every call:
            it only runs for the first K / B iterations, and a bad key would
            stay in ``weight`` for good).
    """

    num_filled: Tensor

    def __init__(self, num_negatives: int = 65536, feat_dim: int = 128,
                 init: str = 'keys') -> None:
        super().__init__()
        if num_negatives <= 0 or feat_dim <= 0:
            raise ValueError(f'Illegal negatives size: num_negatives='
                             f'{num_negatives}, feat_dim={feat_dim}; both '
                             'must be positive.')
        if init not in ('keys', 'random'):
            raise ValueError(f"Illegal init: {init!r}; expected 'keys' or "
                             "'random'.")
        self.num_negatives = int(num_negatives)
        self.feat_dim = int(feat_dim)
        self.init = init
        self.weight = nn.Parameter(
            torch.empty(self.feat_dim, self.num_negatives))
        # columns filled from keys so far; K means "initialised"
        self.register_buffer('num_filled', torch.zeros((), dtype=torch.long),
                             persistent=True)
        self.reset_random()
        if init == 'random':
            self.num_filled.fill_(self.num_negatives)

    @property
    def initialised(self) -> bool:
        """Whether all K columns hold their initial value."""
        return int(self.num_filled) >= self.num_negatives

    @torch.no_grad()
    def reset_random(self,
                     generator: Optional[torch.Generator] = None) -> None:
        """Fill ``weight`` with random unit columns (Gaussian, normalised)."""
        cols = torch.randn(self.feat_dim, self.num_negatives,
                           generator=generator, dtype=self.weight.dtype)
        self.weight.copy_(F.normalize(cols, dim=0).to(self.weight.device))

    def forward(self) -> Tensor:
        """The normalised negatives :math:`\\hat W`. Tensor of shape (D, K).

        Differentiable w.r.t. ``weight``.
        """
        return F.normalize(self.weight, dim=0)

    @torch.no_grad()
    def init_from_keys(self, keys: Tensor) -> int:
        """Write keys into the next unfilled columns (running pointer).

        Args:
            keys (Tensor): Keys of shape (B, D), e.g. the all-gathered keys
                of one iteration; normalised here.

        Returns:
            int: The number of columns written (0 once initialised).
        """
        if keys.dim() != 2 or keys.shape[1] != self.feat_dim:
            raise ValueError(f'Expected keys of shape (B, {self.feat_dim}), '
                             f'got {tuple(keys.shape)}.')
        check_finite('Keys passed to AdversarialNegatives.init_from_keys',
                     keys)
        ptr = int(self.num_filled)
        n = min(keys.shape[0], self.num_negatives - ptr)
        if n <= 0:
            return 0
        cols = F.normalize(keys[:n].detach().to(self.weight), dim=1).t()
        self.weight[:, ptr:ptr + n] = cols
        self.num_filled.add_(n)
        return n

    @torch.no_grad()
    def stats(self) -> dict:
        """Summary numbers for logging: raw column norms, spread."""
        norms = self.weight.norm(dim=0)
        mean_vec = F.normalize(self.weight, dim=0).mean(dim=1)
        return dict(norm_min=norms.min().item(), norm_max=norms.max().item(),
                    mean_norm=mean_vec.norm().item())

    def extra_repr(self) -> str:
        return (f'num_negatives={self.num_negatives}, '
                f'feat_dim={self.feat_dim}, init={self.init}')


class AdCoLoss(nn.Module):
    """The adversarial contrastive loss of AdCo for both players.

    For L2-normalised queries :math:`q_i` (B, D), keys :math:`k_m` (M, D)
    with the positive of query i at row ``pos_offset + i``, and normalised
    negatives :math:`\\hat W` (D, K), the logits of query i are

    .. math:: [\\, q_i^\\top k_1, \\dots, q_i^\\top k_M \\mid
              q_i^\\top \\hat w_1, \\dots, q_i^\\top \\hat w_K \\,]

    (with ``batch_negatives=False`` only the positive key,
    :math:`[q_i^\\top k_{\\text{pos}(i)} \\mid q_i^\\top \\hat W]`), and the
    loss is the mean cross-entropy against the positive column:

    * ``encoder_loss``: at ``temperature`` t, negatives detached, so its
      gradient reaches only the queries (the encoder descends on it);
    * ``negatives_loss``: at ``mem_temperature`` (``mem_t``), queries and keys
      detached, so its gradient reaches only the negatives, which *ascend* on
      it (their optimizer param group has ``maximize=True``).

    Its gradient w.r.t. a normalised column is
    :math:`\\frac{1}{B\\,\\mathrm{mem\\_t}} \\sum_i p_{ij} q_i`, with
    :math:`p_{ij}` the softmax probability of negative j in row i, i.e. the
    official code's closed form (derived by hand there, by autograd here).

    The official code uses the other keys of the global batch as negatives
    too (``batch_negatives=True``); its initialisation phase uses only the
    positive key (``AdCo`` passes ``batch_negatives=False`` there).

    Logits, the divisions by t and mem_t and the cross-entropies are computed
    in float32 even under fp16 / bf16 autocast (``exp(1 / 0.02)`` overflows
    fp16, and bf16 logits lose two decimal digits); the gradients reach
    half-precision features and negatives through the casts.

    Args:
        temperature (float): t of the encoder loss. Defaults to 0.12.
        mem_temperature (float): mem_t of the negatives' loss. Defaults to
            0.02.
        batch_negatives (bool): Use the other keys of the batch as negatives.
            Defaults to True.
        check_interval (int): Calls between the checks that read values back
            from the device (NaN / Inf in queries, keys and negatives); the
            first call is always checked, 0 never. Defaults to 100.

    Examples:
        >>> loss_fn = AdCoLoss(temperature=0.12, mem_temperature=0.02)
        >>> q = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
        >>> k = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
        >>> negatives = AdversarialNegatives(num_negatives=16, feat_dim=8,
        ...                                  init='random')
        >>> encoder_loss, negatives_loss = loss_fn(q, k, negatives())
        >>> (encoder_loss + negatives_loss).backward()
        >>> negatives.weight.grad.shape
        torch.Size([8, 16])

    Raises:
        ValueError: On a NaN, infinite or non-positive temperature,
            inconsistent shapes, an empty batch or non-finite queries, keys
            or negatives.
    """

    def __init__(self, temperature: float = 0.12,
                 mem_temperature: float = 0.02,
                 batch_negatives: bool = True,
                 check_interval: int = 100) -> None:
        super().__init__()
        self.temperature = check_temperature('temperature', temperature)
        self.mem_temperature = check_temperature('mem_temperature (mem_t)',
                                                 mem_temperature)
        self.batch_negatives = bool(batch_negatives)
        self._check = PeriodicCheck(check_interval)

    @staticmethod
    def _check_shapes(q: Tensor, k: Tensor, negatives: Tensor,
                      pos_offset: int) -> None:
        """The checks that need no device sync (run on every call)."""
        if q.dim() != 2 or k.dim() != 2 or negatives.dim() != 2:
            raise ValueError(f'Expected q (B, D), k (M, D) and negatives '
                             f'(D, K), got {tuple(q.shape)}, '
                             f'{tuple(k.shape)} and {tuple(negatives.shape)}.')
        d = q.shape[1]
        if k.shape[1] != d or negatives.shape[0] != d:
            raise ValueError(f'Feature dims differ: q {tuple(q.shape)}, k '
                             f'{tuple(k.shape)}, negatives '
                             f'{tuple(negatives.shape)} (negatives are '
                             'columns: (D, K)).')
        if pos_offset < 0 or pos_offset + q.shape[0] > k.shape[0]:
            raise ValueError(f'Positive keys at rows [{pos_offset}, '
                             f'{pos_offset + q.shape[0]}) but only '
                             f'{k.shape[0]} keys.')
        check_batch('AdCo queries q', q)

    def _check_values(self, *named: Tuple[str, Tensor]) -> None:
        """NaN / Inf checks of ``(name, tensor)`` pairs, when due."""
        if self._check.due():
            for name, x in named:
                check_finite(name, x)

    def logits(self, q: Tensor, k: Tensor, negatives: Tensor,
               pos_offset: int = 0,
               batch_negatives: Optional[bool] = None
               ) -> Tuple[Tensor, Tensor]:
        """Un-tempered logits and the positive's column per row.

        Computed in float32 (float64 stays float64), also under autocast.

        Returns:
            tuple[Tensor, Tensor]: Logits of shape (B, M + K) (or (B, 1 + K)
            without batch negatives) and labels of shape (B, ).
        """
        if batch_negatives is None:
            batch_negatives = self.batch_negatives
        b = q.shape[0]
        with float32_math(q, k, negatives) as (q, k, negatives):
            if batch_negatives:
                # positive and batch logits: (B, M)
                l_pos = q @ k.t()
                labels = torch.arange(pos_offset, pos_offset + b,
                                      device=q.device)
            else:
                # positive logits: (B, 1)
                k_pos = k[pos_offset:pos_offset + b]
                l_pos = (q * k_pos).sum(1, keepdim=True)
                labels = torch.zeros(b, dtype=torch.long, device=q.device)
            # negative logits: (B, K)
            l_neg = q @ negatives
            return torch.cat([l_pos, l_neg], dim=1), labels

    def forward(self, q: Tensor, k: Tensor, negatives: Tensor,
                pos_offset: int = 0,
                batch_negatives: Optional[bool] = None
                ) -> Tuple[Tensor, Tensor]:
        """Both players' losses from one forward.

        Args:
            q (Tensor): L2-normalised queries, shape (B, D).
            k (Tensor): L2-normalised keys, shape (M, D), e.g. all-gathered
                over ranks; not differentiated.
            negatives (Tensor): Normalised negatives :math:`\\hat W`, shape
                (D, K), differentiable w.r.t. the raw parameter.
            pos_offset (int): Row of ``k`` holding query 0's positive (the
                rank times the local batch size). Defaults to 0.
            batch_negatives (bool, optional): Overrides the module's setting.

        Returns:
            tuple[Tensor, Tensor]: ``encoder_loss`` (at t, gradient to ``q``
            only) and ``negatives_loss`` (at mem_t, gradient to
            ``negatives`` only), both scalars.
        """
        self._check_shapes(q, k, negatives, pos_offset)
        self._check_values(('AdCo queries q', q), ('AdCo keys k', k),
                           ('AdCo negatives', negatives))
        return self._losses(q, k, negatives, pos_offset, batch_negatives)

    def _losses(self, q: Tensor, k: Tensor, negatives: Tensor,
                pos_offset: int, batch_negatives: Optional[bool]
                ) -> Tuple[Tensor, Tensor]:
        """:meth:`forward` after its checks."""
        k = k.detach()
        with float32_math(q, k, negatives) as (q, k, negatives):
            logits, labels = self.logits(q, k, negatives.detach(), pos_offset,
                                         batch_negatives)
            encoder_loss = info_nce_from_logits(logits, labels,
                                                self.temperature)
            logits, labels = self.logits(q.detach(), k, negatives, pos_offset,
                                         batch_negatives)
            negatives_loss = info_nce_from_logits(logits, labels,
                                                  self.mem_temperature)
        return encoder_loss, negatives_loss

    @torch.no_grad()
    def negatives_prob(self, q: Tensor, k: Tensor, negatives: Tensor,
                       pos_offset: int = 0,
                       batch_negatives: Optional[bool] = None) -> Tensor:
        """Mean softmax mass at mem_t on the negatives (a scalar in [0, 1]).

        The negatives' gradient is proportional to it: near 0 they have
        fallen out of the queries' reach and barely move (e.g. when the
        encoder has drifted far from the keys they were initialised with).
        """
        return self.negatives_stats(q, k, negatives, pos_offset,
                                    batch_negatives)['neg_prob']

    @torch.no_grad()
    def negatives_stats(self, q: Tensor, k: Tensor, negatives: Tensor,
                        pos_offset: int = 0,
                        batch_negatives: Optional[bool] = None
                        ) -> Dict[str, Tensor]:
        """How adversarial the negatives are, for the training log.

        Returns:
            dict[str, Tensor]: scalars ``neg_prob`` (see
            :meth:`negatives_prob`), ``neg_sim_max`` (mean over queries of
            the cosine to the closest negative), ``neg_sim_mean`` (mean
            cosine of a query to a negative) and ``pos_sim`` (mean cosine of
            a query to its positive key).
        """
        logits, labels = self.logits(q, k, negatives, pos_offset,
                                     batch_negatives)
        with float32_math(logits) as (logits, ):
            p = torch.softmax(logits / self.mem_temperature, dim=1)
            n_neg = negatives.shape[1]
            neg = logits[:, logits.shape[1] - n_neg:]
            return dict(
                neg_prob=p[:, logits.shape[1] - n_neg:].sum(1).mean(),
                neg_sim_max=neg.max(1).values.mean(),
                neg_sim_mean=neg.mean(),
                pos_sim=logits.gather(1, labels[:, None]).mean())

    def symmetric(self, q1: Tensor, q2: Tensor, k1: Tensor, k2: Tensor,
                  negatives: Tensor, pos_offset: int = 0
                  ) -> Tuple[Tensor, Tensor]:
        """The symmetrised losses: each view's query against the other's key.

        :math:`\\frac12 [L(q_1, k_2) + L(q_2, k_1)]` for both players, as in
        the official code's ``--sym`` mode (q: query encoder, k: key
        encoder of the same view).

        Args:
            q1 (Tensor): Queries of view 1, shape (B, D).
            q2 (Tensor): Queries of view 2, shape (B, D).
            k1 (Tensor): Keys of view 1, shape (M, D).
            k2 (Tensor): Keys of view 2, shape (M, D).
            negatives (Tensor): Normalised negatives, shape (D, K).
            pos_offset (int): As in :meth:`forward`. Defaults to 0.

        Returns:
            tuple[Tensor, Tensor]: ``encoder_loss`` and ``negatives_loss``.
        """
        # one call of the periodic check for both directions, so that every
        # input is checked whatever the interval's parity
        self._check_shapes(q1, k2, negatives, pos_offset)
        self._check_shapes(q2, k1, negatives, pos_offset)
        self._check_values(('AdCo queries q1', q1), ('AdCo queries q2', q2),
                           ('AdCo keys k1', k1), ('AdCo keys k2', k2),
                           ('AdCo negatives', negatives))
        enc1, neg1 = self._losses(q1, k2, negatives, pos_offset, None)
        enc2, neg2 = self._losses(q2, k1, negatives, pos_offset, None)
        return 0.5 * (enc1 + enc2), 0.5 * (neg1 + neg2)

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, '
                f'mem_temperature={self.mem_temperature}, '
                f'batch_negatives={self.batch_negatives}')
