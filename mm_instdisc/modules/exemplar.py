"""Label-filtered instance discrimination of Exemplar (plain PyTorch).

Exemplar (Zhao et al., ICLR 2021, "What makes instance discrimination good
for transfer learning?") is MoCo with labels: the positive of a query is
still only the key of another view of the same image, but every queued key
whose class label equals the query's label is dropped from the negatives.
Same-class images are neither pulled together nor pushed apart.

:class:`ExemplarQueue` is MoCo's FIFO key queue with a parallel queue of
labels; :class:`ExemplarLoss` is InfoNCE over ``[positive | negatives]``
with the same-class negatives masked to :math:`-\\infty` before the
log-sum-exp. Usable in an mmengine model (``ExemplarMoCo`` and
its ``LossHead`` wrap them) or in a hand-written training loop.

Edge cases (each tested):

* **Unfilled queue slots.** As in MoCo, the queue starts with random unit
  keys; their label is ``-1`` (:data:`UNFILLED_LABEL`), which never equals
  a real label (labels must be >= 0), so these slots act as negatives for
  every query until real keys overwrite them.
* **All negatives same-class.** The denominator then holds only the
  positive and the query's loss is :math:`-\\log 1 = 0` with zero gradient;
  never NaN (the positive logit is always finite).
* **No labels.** ``labels=None`` in :meth:`ExemplarLoss.forward` is plain
  MoCo InfoNCE (nothing masked); :meth:`ExemplarQueue.enqueue` without
  labels stores ``-1``. (The registered ``ExemplarMoCo`` instead raises an
  error on unlabelled data: there, missing labels are a mistake.)
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (PeriodicCheck, check_batch, check_finite,
                      check_temperature, float32_math)
from .info_nce import info_nce_from_logits

#: Label of a queue slot that holds no real key yet (or a key enqueued
#: without a label). Real labels are >= 0, so it never matches one.
UNFILLED_LABEL = -1


def _check_labels(name: str, labels: Tensor, length: int) -> None:
    if labels.dim() != 1 or labels.shape[0] != length:
        raise ValueError(f'Expected {name} of shape ({length}, ), got '
                         f'{tuple(labels.shape)}.')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f'{name} must be an integer tensor (class indices), '
                         f'got dtype {labels.dtype}.')
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f'{name} must be class indices >= 0, got '
                         f'{int(labels.min())} ({UNFILLED_LABEL} marks '
                         'unfilled queue slots).')


class ExemplarQueue(nn.Module):
    """MoCo's FIFO queue of keys with a parallel queue of class labels.

    ``keys`` (K, D), ``labels`` (K, ) and the write pointer ``ptr`` are
    persistent buffers: they follow ``.to()``, are saved in
    ``state_dict()`` (so in every checkpoint) and restored on resume.

    The queue starts as MoCo's does, with random unit keys, here labelled
    :data:`UNFILLED_LABEL` (-1). :meth:`enqueue` writes a batch at the
    pointer, wrapping around the end, so any batch size works (MoCo requires
    the batch to divide K); a batch longer than K leaves its last K keys,
    exactly as writing it one key at a time would.

    Args:
        queue_len (int): K, the number of queued keys. Defaults to 65536.
        feat_dim (int): D, the key dimension. Defaults to 128.
        check_interval (int): Calls of :meth:`enqueue` between the checks
            that read values back from the device (NaN / Inf in the keys);
            the first call is always checked, 0 never. Defaults to 100.

    Examples:
        >>> queue = ExemplarQueue(queue_len=5, feat_dim=3)
        >>> queue.labels.tolist()
        [-1, -1, -1, -1, -1]
        >>> k = torch.nn.functional.normalize(torch.randn(3, 3), dim=1)
        >>> queue.enqueue(k, torch.tensor([7, 8, 9]))
        >>> queue.labels.tolist(), int(queue.ptr)
        ([7, 8, 9, -1, -1], 3)
        >>> queue.enqueue(k, torch.tensor([1, 2, 3]))  # wraps around
        >>> queue.labels.tolist(), int(queue.ptr)
        ([3, 8, 9, 1, 2], 1)

    Raises:
        ValueError: On a non-positive size, or keys/labels of the wrong
            shape, dtype or value (negative labels, non-finite keys).
    """

    keys: Tensor
    labels: Tensor
    ptr: Tensor

    def __init__(self, queue_len: int = 65536, feat_dim: int = 128,
                 check_interval: int = 100) -> None:
        super().__init__()
        if queue_len <= 0 or feat_dim <= 0:
            raise ValueError(f'Illegal queue size: queue_len={queue_len}, '
                             f'feat_dim={feat_dim}; both must be positive.')
        self.queue_len = int(queue_len)
        self.feat_dim = int(feat_dim)
        self.register_buffer('keys', torch.empty(self.queue_len,
                                                 self.feat_dim),
                             persistent=True)
        self.register_buffer(
            'labels',
            torch.full((self.queue_len, ), UNFILLED_LABEL, dtype=torch.long),
            persistent=True)
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long),
                             persistent=True)
        self._check = PeriodicCheck(check_interval)
        self.reset_random()

    @torch.no_grad()
    def reset_random(self,
                     generator: Optional[torch.Generator] = None) -> None:
        """Random unit keys, all labels unfilled (-1), pointer at 0."""
        rows = torch.randn(self.queue_len, self.feat_dim,
                           generator=generator, dtype=self.keys.dtype)
        self.keys.copy_(F.normalize(rows, dim=1).to(self.keys.device))
        self.labels.fill_(UNFILLED_LABEL)
        self.ptr.zero_()

    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Optional[Tensor] = None) -> None:
        """Write keys (and their labels) at the pointer, oldest out first.

        Args:
            keys (Tensor): L2-normalised keys of shape (B, D), e.g. all
                ranks' keys of one step (the same on every rank).
            labels (Tensor, optional): Class indices >= 0 of shape (B, );
                None stores :data:`UNFILLED_LABEL` (no masking, MoCo).
        """
        if keys.dim() != 2 or keys.shape[1] != self.feat_dim:
            raise ValueError(f'Expected keys of shape (B, {self.feat_dim}), '
                             f'got {tuple(keys.shape)}.')
        b = keys.shape[0]
        if labels is None:
            labels = keys.new_full((b, ), UNFILLED_LABEL, dtype=torch.long)
        else:
            _check_labels('labels passed to ExemplarQueue.enqueue', labels, b)
        if self._check.due():
            check_finite('Keys passed to ExemplarQueue.enqueue', keys)
        n = min(b, self.queue_len)
        ptr = int(self.ptr)
        # slots of the last n keys; the first b - n would be overwritten
        idx = (ptr + (b - n) + torch.arange(n, device=self.keys.device)
               ) % self.queue_len
        self.keys[idx] = keys[b - n:].detach().to(self.keys)
        self.labels[idx] = labels[b - n:].to(self.labels)
        self.ptr.fill_((ptr + b) % self.queue_len)

    @torch.no_grad()
    def num_filled(self) -> int:
        """Slots holding a labelled key (label != -1)."""
        return int((self.labels != UNFILLED_LABEL).sum())

    def extra_repr(self) -> str:
        return f'queue_len={self.queue_len}, feat_dim={self.feat_dim}'


class ExemplarLoss(nn.Module):
    """InfoNCE without same-class negatives (Exemplar).

    For L2-normalised queries :math:`q_i` with labels :math:`y_i`, their
    positive keys :math:`k_i` and queued keys :math:`n_j` with labels
    :math:`z_j`,

    .. math:: L_i = -\\log \\frac{\\exp(q_i^\\top k_i / t)}
              {\\exp(q_i^\\top k_i / t) + \\sum_{j:\\, z_j \\ne y_i}
              \\exp(q_i^\\top n_j / t)}

    averaged over the batch. Same-class negatives are set to
    :math:`-\\infty` before the log-sum-exp, so they get exactly zero weight
    and zero gradient. With all labels distinct from the queue's (or
    ``labels=None``) this is MoCo's InfoNCE. A query whose every negative
    is same-class has loss 0 (its positive alone in the denominator).

    Logits, the division by t and the cross-entropy are computed in float32
    even under fp16 / bf16 autocast; the gradient reaches half-precision
    queries through the cast.

    Args:
        temperature (float): t. Defaults to 0.2 (Exemplar-v2 / MoCo v2;
            0.07 for v1).
        check_interval (int): Calls between the checks that read values back
            from the device (NaN / Inf in queries, keys and queued keys); the
            first call is always checked, 0 never. Defaults to 100.

    Examples:
        >>> loss_fn = ExemplarLoss(temperature=0.2)
        >>> queue = ExemplarQueue(queue_len=16, feat_dim=8)
        >>> q = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
        >>> k = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
        >>> y = torch.tensor([0, 1, 1, 2])
        >>> loss = loss_fn(q, k, queue.keys, y, queue.labels)
        >>> queue.enqueue(k, y)  # after the loss, as MoCo does
        >>> bool(torch.isfinite(loss))
        True

    Raises:
        ValueError: On a NaN, infinite or non-positive temperature,
            inconsistent shapes, an empty batch, labels without queue
            labels, negative labels or non-finite queries, keys or queued
            keys.
    """

    def __init__(self, temperature: float = 0.2,
                 check_interval: int = 100) -> None:
        super().__init__()
        self.temperature = check_temperature('temperature', temperature)
        self._check = PeriodicCheck(check_interval)

    def _check_inputs(self, q: Tensor, k: Tensor, queue_keys: Tensor,
                      labels: Optional[Tensor],
                      queue_labels: Optional[Tensor]) -> None:
        if q.dim() != 2 or k.shape != q.shape or queue_keys.dim() != 2:
            raise ValueError(f'Expected q (B, D), k (B, D) and queue_keys '
                             f'(K, D), got {tuple(q.shape)}, '
                             f'{tuple(k.shape)} and '
                             f'{tuple(queue_keys.shape)}.')
        if queue_keys.shape[1] != q.shape[1]:
            raise ValueError(f'Feature dims differ: q {tuple(q.shape)}, '
                             f'queue_keys {tuple(queue_keys.shape)} (queued '
                             'keys are rows: (K, D)).')
        if labels is not None:
            _check_labels('labels', labels, q.shape[0])
            if queue_labels is None:
                raise ValueError('labels given without queue_labels: pass '
                                 'the label of every queued key, shape '
                                 f'({queue_keys.shape[0]}, ).')
            if (queue_labels.dim() != 1
                    or queue_labels.shape[0] != queue_keys.shape[0]):
                raise ValueError(f'Expected queue_labels of shape '
                                 f'({queue_keys.shape[0]}, ), got '
                                 f'{tuple(queue_labels.shape)}.')
        check_batch('Exemplar queries q', q)
        if self._check.due():
            check_finite('Exemplar queries q', q)
            check_finite('Exemplar keys k', k)
            check_finite('Exemplar queue_keys', queue_keys)

    @staticmethod
    def same_class_mask(labels: Tensor, queue_labels: Tensor) -> Tensor:
        """Which negatives are excluded: bool tensor of shape (B, K)."""
        return labels[:, None] == queue_labels[None, :].to(labels.device)

    def logits(self, q: Tensor, k: Tensor, queue_keys: Tensor,
               labels: Optional[Tensor] = None,
               queue_labels: Optional[Tensor] = None) -> Tensor:
        """Un-tempered logits, the positive in column 0, same-class
        negatives at -inf. Tensor of shape (B, 1 + K), float32 (float64
        stays float64), also under autocast."""
        with float32_math(q, k) as (q, k):
            # positive logits: (B, 1)
            l_pos = (q * k.detach()).sum(1, keepdim=True)
            # negative logits: (B, K)
            l_neg = q @ queue_keys.detach().to(q.dtype).t()
            if labels is not None:
                l_neg = l_neg.masked_fill(
                    self.same_class_mask(labels, queue_labels),
                    float('-inf'))
            return torch.cat([l_pos, l_neg], dim=1)

    def forward(self, q: Tensor, k: Tensor, queue_keys: Tensor,
                labels: Optional[Tensor] = None,
                queue_labels: Optional[Tensor] = None) -> Tensor:
        """The mean loss of a batch.

        Args:
            q (Tensor): L2-normalised queries, shape (B, D).
            k (Tensor): L2-normalised positive keys, shape (B, D); not
                differentiated.
            queue_keys (Tensor): Queued keys (negatives), shape (K, D); not
                differentiated.
            labels (Tensor, optional): Class indices >= 0 of the queries,
                shape (B, ). None: plain MoCo InfoNCE.
            queue_labels (Tensor, optional): Labels of the queued keys,
                shape (K, ), -1 for unfilled slots. Required with
                ``labels``.

        Returns:
            Tensor: The loss, a scalar.
        """
        self._check_inputs(q, k, queue_keys, labels, queue_labels)
        logits = self.logits(q, k, queue_keys, labels, queue_labels)
        # logits: (B, 1 + K); the positive is column 0
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return info_nce_from_logits(logits, target, self.temperature)

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}'
