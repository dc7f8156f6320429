"""Colorization (Zhang, Isola and Efros, ECCV 2016, "Colorful image
colorization") and its form for one-channel images.

Plain PyTorch (imports only torch):

* :func:`srgb_to_lab`: sRGB in [0, 1] to CIE Lab (D65), the colour space of
  the paper: the network sees L and predicts ab.
* :func:`ab_bins`: the quantised ab values: cells of side ``grid`` (10, as
  the paper) that sRGB colours reach, computed by converting a dense sample
  of the sRGB cube (261 cells for grid 10; the paper counts 313 from its own
  gamut computation).
* :class:`BinnedPixelLoss`: the paper's loss for any quantised per-pixel
  target: a 1x1-conv classifier over the bins on the backbone's feature map,
  logits upsampled to the target's resolution, soft-encoded targets (each
  value spread over its ``k`` nearest bins with Gaussian weights, sigma 5 in
  ab units) and class rebalancing (each pixel weighted by ``1 / ((1 - lam)
  p~ + lam / Q)`` of its nearest bin, lam = 0.5, normalised so that the
  expected weight is 1, with p~ the bins' frequency smoothed by a Gaussian
  over the bins). The paper took p~ from the whole ImageNet training set
  beforehand; here it is a running average of the training batches' bin
  frequencies (a buffer, so in every checkpoint), which needs no extra
  pass over the data.

For one-channel images there is no colour to predict from lightness. The
closest meaningful form of the recipe, predicting a withheld part of the
signal from the rest as a per-pixel classification over quantised values
with soft targets and rebalancing, is to withhold the intensity of image
regions: ``mm_instdisc.models.MaskedIntensityPred`` hides blocks of the
image and predicts the intensity bins of the hidden pixels with this loss
(the context-encoder task with colorization's loss).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import PeriodicCheck, check_finite, float32_math
from .distributed import all_reduce

_SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
                (0.212671, 0.715160, 0.072169),
                (0.019334, 0.119193, 0.950227))
_D65 = (0.950456, 1.0, 1.088754)


def srgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB (B, 3, H, W) in [0, 1] to CIE Lab (D65): L in [0, 100], a and
    b roughly in [-110, 110]. Computed in float32 (float64 stays)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f'Expected sRGB images (B, 3, H, W), got '
                         f'{tuple(rgb.shape)}.')
    with float32_math(rgb) as (x, ):
        x = x.clamp(0, 1)
        lin = torch.where(x <= 0.04045, x / 12.92,
                          ((x + 0.055) / 1.055)**2.4)
        m = torch.tensor(_SRGB_TO_XYZ, dtype=x.dtype, device=x.device)
        xyz = torch.einsum('ij,bjhw->bihw', m, lin)
        xyz = xyz / torch.tensor(_D65, dtype=x.dtype,
                                 device=x.device).view(1, 3, 1, 1)
        eps, kappa = 216 / 24389, 24389 / 27
        f = torch.where(xyz > eps, xyz.clamp(min=1e-12)**(1 / 3),
                        (kappa * xyz + 16) / 116)
        return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                            200 * (f[:, 1] - f[:, 2])], 1)


def ab_bins(grid: float = 10.0, samples: int = 64) -> Tensor:
    """Centres (Q, 2) of the ab cells of side ``grid`` that sRGB colours
    reach (``samples`` values per RGB channel), sorted by (a, b)."""
    g = torch.linspace(0, 1, samples, dtype=torch.float64)
    rgb = torch.stack(torch.meshgrid(g, g, g, indexing='ij'), 0)
    ab = srgb_to_lab(rgb.reshape(1, 3, samples * samples, samples))[0, 1:]
    cells = torch.unique(torch.round(ab.reshape(2, -1).t() / grid).long(),
                         dim=0)
    return (cells * grid).float()


class BinnedPixelLoss(nn.Module):
    """Per-pixel classification over quantised values (the paper's loss).

    Args:
        in_channels (int): Channels of the backbone's feature map.
        space (str): ``'ab'`` (colour: the :func:`ab_bins`, soft-encoding
            sigma 5) or ``'intensity'`` (one-channel images: ``num_bins``
            evenly spaced values in [0, 1], sigma one bin).
        num_bins (int): Bins of ``'intensity'``. Defaults to 16.
        k (int): Nearest bins of the soft encoding. Defaults to 5 (ab) and
            2 (intensity) when None.
        rebalance (float): lam of the class rebalancing; 1 is no
            rebalancing (uniform weights). Defaults to 0.5.
        prior_momentum (float): Weight of the old running bin frequencies
            per training batch. Defaults to 0.99.

    Inputs of :meth:`forward`: the feature map (B, C, h', w'), the target
    values (B, d, h, w) (d = 2 for ab, 1 for intensity), optionally a mask
    (B, h, w) of the pixels that count; returns the mean weighted loss over
    the counted pixels; with ``return_acc`` also the % of counted pixels
    whose most likely bin is the bin nearest their value (the task's
    accuracy, logged by the algorithms).
    """

    def __init__(self, in_channels: int, space: str = 'ab',
                 num_bins: int = 16, k: Optional[int] = None,
                 rebalance: float = 0.5,
                 prior_momentum: float = 0.99) -> None:
        super().__init__()
        if space == 'ab':
            centres, sigma = ab_bins(), 5.0
        elif space == 'intensity':
            if num_bins < 2:
                raise ValueError(f'Illegal num_bins: {num_bins}; expected '
                                 '>= 2.')
            centres = torch.linspace(0, 1, num_bins)[:, None]
            sigma = 1.0 / (num_bins - 1)
        else:
            raise ValueError(f"Illegal space: {space!r}; expected 'ab' or "
                             "'intensity'.")
        if not 0.0 <= rebalance <= 1.0:
            raise ValueError(f'Illegal rebalance: {rebalance}; expected '
                             '[0, 1].')
        if not 0.0 <= prior_momentum < 1.0:
            raise ValueError(f'Illegal prior_momentum: {prior_momentum}; '
                             'expected [0, 1).')
        self.space, self.sigma = space, float(sigma)
        self.k = int(k or (5 if space == 'ab' else 2))
        self.rebalance = float(rebalance)
        self.prior_momentum = float(prior_momentum)
        q = centres.shape[0]
        if not 1 <= self.k <= q:
            raise ValueError(f'Illegal k: {self.k}; expected 1..{q}.')
        self.register_buffer('centres', centres)
        # Gaussian smoothing of the frequencies over the bins (fixed, so
        # built once and kept out of checkpoints)
        d2 = torch.cdist(centres.float(), centres.float()).pow(2)
        self.register_buffer('smooth', torch.exp(-d2 / (2 * self.sigma**2)),
                             persistent=False)
        # running bin frequencies, uniform until the first training batch
        self.register_buffer('prior', torch.full((q, ), 1.0 / q))
        self.classifier = nn.Conv2d(in_channels, q, 1)
        self._check = PeriodicCheck(100)

    @property
    def num_bins(self) -> int:
        return self.centres.shape[0]

    def encode(self, values: Tensor):
        """Soft encoding of values (N, d): the ``k`` nearest bins (N, k),
        their Gaussian weights (N, k) summing to 1, and the nearest bin."""
        d2 = torch.cdist(values.float(), self.centres.float()).pow(2)
        near_d2, near = d2.topk(self.k, dim=1, largest=False)
        w = torch.softmax(-near_d2 / (2 * self.sigma**2), dim=1)
        return near, w, near[:, 0]

    def weights(self) -> Tensor:
        """Rebalancing weight of every bin (Q, ): ``1 / ((1 - lam) p~ + lam
        / Q)``, p~ the running frequencies smoothed over the bins, scaled so
        that their expectation under p~ is 1."""
        q = self.num_bins
        p = self.smooth @ self.prior.float()
        # clamped: with rebalance 0 a bin whose frequency underflowed to 0
        # would get an infinite weight
        p = (p / p.sum()).clamp(min=1e-12)
        w = 1.0 / ((1 - self.rebalance) * p + self.rebalance / q)
        return w / (p * w).sum()

    def forward(self, feats: Tensor, target: Tensor,
                mask: Optional[Tensor] = None, return_acc: bool = False):
        B, d, h, w = target.shape
        if d != self.centres.shape[1]:
            raise ValueError(f'Expected targets with {self.centres.shape[1]} '
                             f'channel(s) for space {self.space!r}, got '
                             f'{tuple(target.shape)}.')
        if mask is not None and tuple(mask.shape) != (B, h, w):
            raise ValueError(f'Expected a mask of the target grid {(B, h, w)}'
                             f', got {tuple(mask.shape)}.')
        with float32_math(feats, target) as (feats, target):
            logits = F.conv2d(feats, self.classifier.weight.float(),
                              self.classifier.bias.float())
            logits = F.interpolate(logits, size=(h, w), mode='bilinear',
                                   align_corners=False)
            values = target.permute(0, 2, 3, 1).reshape(-1, d)
            with torch.no_grad():
                near, soft, nearest = self.encode(values)
                keep = (torch.ones(B * h * w, dtype=torch.bool,
                                   device=values.device)
                        if mask is None else mask.reshape(-1).bool())
                if self.training:
                    self._update_prior(nearest[keep])
                pix_w = self.weights()[nearest]
            logp = F.log_softmax(logits, 1).permute(0, 2, 3, 1).reshape(
                B * h * w, -1)
            ce = -(logp.gather(1, near) * soft).sum(1)  # (N, )
            kept = keep.float()
            loss = (pix_w * ce * kept).sum() / kept.sum().clamp(min=1)
        if self._check.due():
            check_finite('Colorization loss', loss.detach())
        if not return_acc:
            return loss
        with torch.no_grad():
            right = logp.argmax(1) == nearest
            acc = (right & keep).sum() * 100.0 / keep.sum().clamp(min=1)
        return loss, acc

    @torch.no_grad()
    def _update_prior(self, nearest: Tensor) -> None:
        counts = torch.bincount(nearest, minlength=self.num_bins).float()
        counts = all_reduce(counts)  # every rank keeps the same prior
        if counts.sum() == 0:
            return
        freq = counts / counts.sum()
        m = self.prior_momentum
        self.prior.mul_(m).add_(freq.to(self.prior), alpha=1 - m)

    def extra_repr(self) -> str:
        return (f'space={self.space!r}, num_bins={self.num_bins}, k={self.k}'
                f', rebalance={self.rebalance}')
