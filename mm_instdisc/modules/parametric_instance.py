"""Parametric instance classification, the baseline of NPID (Wu et al., 2018).

Plain PyTorch: usable in an mmengine model (``LossHead`` builds
it) or in a lightly / hand-written training loop.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (PeriodicCheck, check_batch, check_finite, check_indices,
                      check_temperature, float32_math)


class ParametricInstanceLoss(nn.Module):
    """Softmax over one learned class per training image.

    The *parametric* classifier of `Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination
    <https://arxiv.org/abs/1805.01978>`_ (eq. 1; "parametric softmax" in its
    Table 1), the baseline that NPID's memory bank replaces: every training
    image i is its own class with a weight vector :math:`w_i`,

    .. math::
        P(i|v) = \\frac{\\exp(w_i^\\top v / T)}
                      {\\sum_j \\exp(w_j^\\top v / T)},
        \\qquad \\mathcal{L} = -\\log P(i|v),

    averaged over the batch. ``W`` (N, D) is an ordinary parameter (no bias):
    it gets gradients for all N rows every step, is updated by the
    optimizer (weight decay included) and is saved in checkpoints. Eq. 1
    has no temperature; ``temperature=1`` (the default) is the paper's
    formula, another value divides the logits, as in the non-parametric
    eq. 2 (with unit features a learned scale of ``W`` can do the same).

    ``W`` is initialised from a normal distribution with std ``init_std``
    (0.01, as mmpretrain's ``LinearClsHead``), not ``nn.Linear``'s
    kaiming-uniform: the initial softmax is then nearly uniform, the loss
    starts at ~log N.

    The logits, the division by T and the cross-entropy are computed in
    float32 even under fp16 / bf16 autocast (``W`` is cast too, a no-op for
    autocast's float32 weights); gradients reach half-precision features
    through the cast.

    Args:
        num_instances (int): N, the number of classes, which must equal the
            size of the training set (sample indices are class labels).
        feat_dim (int): D, the embedding size.
        temperature (float): T; eq. 1 has none (T = 1). Defaults to 1.0.
        init_std (float): Std of the normal initialisation of ``W``.
            Defaults to 0.01.
        check_interval (int): Calls between the checks that read values back
            from the device (NaN / Inf in the features); the first call is
            always checked, 0 never. Defaults to 100.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> loss_fn = ParametricInstanceLoss(num_instances=10, feat_dim=4)
        >>> f = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
        >>> loss = loss_fn(f, torch.tensor([0, 5, 9]))
        >>> round(loss.item(), 2)  # ~log(10) at initialisation
        2.3
        >>> loss_fn.weight.shape
        torch.Size([10, 4])

    Raises:
        ValueError: On a non-positive ``num_instances``, ``feat_dim``,
            ``temperature`` or ``init_std``, a NaN or infinite
            ``temperature``; on features that are not (B, ``feat_dim``),
            an empty batch or features that are not finite; on indices that
            are not one per feature or lie outside ``[0, num_instances)``.
    """

    weight: nn.Parameter

    def __init__(self, num_instances: int, feat_dim: int,
                 temperature: float = 1.0, init_std: float = 0.01,
                 check_interval: int = 100) -> None:
        super().__init__()
        if num_instances < 1:
            raise ValueError(f'Illegal num_instances: {num_instances}; must '
                             'be the (positive) training set size.')
        if feat_dim < 1:
            raise ValueError(f'Illegal feat_dim: {feat_dim}; must be > 0.')
        temperature = check_temperature('temperature', temperature)
        if init_std <= 0:
            raise ValueError(f'Illegal init_std: {init_std}; must be > 0.')
        self.num_instances = int(num_instances)
        self.feat_dim = int(feat_dim)
        self.temperature = float(temperature)
        self.init_std = float(init_std)
        self.weight = nn.Parameter(torch.empty(self.num_instances,
                                               self.feat_dim))
        self._check = PeriodicCheck(check_interval)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw ``W`` from N(0, ``init_std``^2)."""
        nn.init.normal_(self.weight, mean=0.0, std=self.init_std)

    def logits(self, feats: Tensor) -> Tensor:
        """Class scores :math:`W f / T`. Tensor of shape (B, N).

        Float32 (float64 stays float64), also under autocast.
        """
        if feats.dim() != 2 or feats.shape[1] != self.feat_dim:
            raise ValueError(f'Expected features of shape '
                             f'(B, {self.feat_dim}) (feat_dim='
                             f'{self.feat_dim}), got '
                             f'{tuple(feats.shape)}.')
        with float32_math(feats, self.weight) as (feats, weight):
            # logits: (B, N)
            return feats @ weight.t() / self.temperature

    def forward(self, feats: Tensor, idx: Tensor,
                return_logits: bool = False):
        """Mean cross-entropy of the instance classifier.

        Args:
            feats (Tensor): Embeddings v (L2-normalised in NPID's setting),
                shape (B, D).
            idx (Tensor): Each embedding's image index = its class, (B, ).
            return_logits (bool): Also return the (B, N) logits, e.g. for
                a training-accuracy log without a second matrix product.

        Returns:
            Tensor | tuple[Tensor, Tensor]: Scalar loss (and the logits).
        """
        logits = self.logits(feats)  # (B, N)
        check_batch('Parametric instance features feats', feats)
        if idx.shape != (feats.shape[0], ):
            raise ValueError(f'Expected one index per feature, got idx of '
                             f'shape {tuple(idx.shape)} for '
                             f'{feats.shape[0]} features.')
        idx = idx.to(logits.device).long()
        # every call: on a GPU a bad index is a device-side assert (fatal)
        check_indices(idx, self.num_instances, 'Instance',
                      'num_instances must equal the training set size.')
        if self._check.due():
            check_finite('Parametric instance features feats', feats)
        with float32_math(logits) as (logits, ):
            loss = F.cross_entropy(logits, idx)
        return (loss, logits) if return_logits else loss

    def extra_repr(self) -> str:
        return (f'num_instances={self.num_instances}, '
                f'feat_dim={self.feat_dim}, temperature={self.temperature}, '
                f'init_std={self.init_std}')
