"""Colorization's maths (Lab conversion, gamut bins, the binned per-pixel
loss with soft targets and rebalancing) against slow references."""
import math

import pytest
import torch

from mm_instdisc.modules.colorization import (BinnedPixelLoss, ab_bins,
                                              srgb_to_lab)


def lab_reference(r, g, b):
    """sRGB -> Lab (D65) for one colour, written out from the standard."""

    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055)**2.4

    r, g, b = lin(r), lin(g), lin(b)
    x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.950456
    y = 0.212671 * r + 0.715160 * g + 0.072169 * b
    z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.088754

    def f(t):
        return t**(1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_lab_of_known_colours_and_random_ones():
    white = srgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    assert white.tolist() == pytest.approx([100, 0, 0], abs=1e-3)
    red = srgb_to_lab(torch.tensor([1., 0, 0]).view(1, 3, 1, 1)).flatten()
    assert red.tolist() == pytest.approx([53.24, 80.09, 67.20], abs=0.02)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 3, 4, generator=g, dtype=torch.float64)
    lab = srgb_to_lab(x)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                ref = lab_reference(*x[b, :, i, j].tolist())
                assert lab[b, :, i, j].tolist() == pytest.approx(ref,
                                                                 abs=1e-6)


def test_ab_bins_cover_the_gamut():
    bins = ab_bins()
    assert bins.shape == (261, 2)
    assert torch.equal(bins, torch.round(bins / 10) * 10)
    assert (bins == 0).all(1).any()  # grey
    g = torch.Generator().manual_seed(1)
    ab = srgb_to_lab(torch.rand(1, 3, 50, 50, generator=g))[0, 1:]
    cells = torch.round(ab.reshape(2, -1).t() / 10) * 10
    members = {tuple(c) for c in bins.tolist()}
    assert all(tuple(c) in members for c in cells.tolist())


def _reference_loss(loss_fn, feats, target, mask):
    """Per pixel, by hand: logits of the 1x1 conv, the k nearest bins with
    Gaussian weights, the rebalancing weight of the nearest bin."""
    w, bias = loss_fn.classifier.weight[:, :, 0, 0], loss_fn.classifier.bias
    centres, q = loss_fn.centres, loss_fn.num_bins
    # rebalancing weights
    smooth = torch.tensor([[math.exp(-((centres[i] - centres[j])**2).sum()
                                     / (2 * loss_fn.sigma**2))
                            for j in range(q)] for i in range(q)])
    p = smooth @ loss_fn.prior
    p = p / p.sum()
    lam = loss_fn.rebalance
    wts = 1 / ((1 - lam) * p + lam / q)
    wts = wts / (p * wts).sum()
    total, count = 0.0, 0
    B, _, H, W = target.shape
    for b in range(B):
        for i in range(H):
            for j in range(W):
                if not mask[b, i, j]:
                    continue
                logp = torch.log_softmax(w @ feats[b, :, i, j] + bias, 0)
                v = target[b, :, i, j]
                d2 = ((centres - v)**2).sum(1)
                order = sorted(range(q), key=lambda k: d2[k].item())
                near = order[:loss_fn.k]
                g = torch.tensor([math.exp(-d2[k].item() /
                                           (2 * loss_fn.sigma**2))
                                  for k in near])
                g = g / g.sum()
                ce = -sum(g[n] * logp[k] for n, k in enumerate(near))
                total += wts[near[0]] * ce
                count += 1
    return total / count


@pytest.mark.parametrize('space, d', [('intensity', 1), ('ab', 2)])
def test_binned_loss_against_the_reference(space, d):
    torch.manual_seed(0)
    loss_fn = BinnedPixelLoss(6, space=space, num_bins=8).eval()
    # a non-uniform prior, so that the rebalancing weights differ
    prior = torch.rand(loss_fn.num_bins) + 0.1
    loss_fn.prior.copy_(prior / prior.sum())
    feats = torch.randn(2, 6, 3, 3)
    scale = 1.0 if space == 'intensity' else 60.0
    target = torch.rand(2, d, 3, 3) * scale - (0 if d == 1 else 30)
    mask = torch.rand(2, 3, 3) > 0.3
    got = loss_fn(feats, target, mask)
    ref = _reference_loss(loss_fn, feats, target, mask)
    assert got.item() == pytest.approx(float(ref), rel=1e-4)


@pytest.mark.parametrize('space, d', [('intensity', 1), ('ab', 2)])
def test_accuracy_is_the_share_of_counted_pixels_whose_argmax_is_nearest(
        space, d):
    torch.manual_seed(1)
    loss_fn = BinnedPixelLoss(6, space=space, num_bins=8).eval()
    feats = torch.randn(2, 6, 3, 3)
    scale = 1.0 if space == 'intensity' else 60.0
    target = torch.rand(2, d, 3, 3) * scale - (0 if d == 1 else 30)
    mask = torch.rand(2, 3, 3) > 0.3
    loss, acc = loss_fn(feats, target, mask, return_acc=True)
    assert torch.equal(loss, loss_fn(feats, target, mask))
    logits = loss_fn.classifier(feats)  # same size: no upsampling
    right = total = 0
    for b in range(2):
        for i in range(3):
            for j in range(3):
                if not mask[b, i, j]:
                    continue
                dist = [float(((target[b, :, i, j] - c)**2).sum())
                        for c in loss_fn.centres]
                nearest = min(range(len(dist)), key=dist.__getitem__)
                right += int(logits[b, :, i, j].argmax()) == nearest
                total += 1
    assert acc.item() == pytest.approx(100.0 * right / total)


def test_smoothing_kernel_is_fixed_and_not_checkpointed():
    loss_fn = BinnedPixelLoss(4, space='intensity', num_bins=5)
    c = loss_fn.centres[:, 0]
    expected = torch.exp(-(c[:, None] - c[None])**2 /
                         (2 * loss_fn.sigma**2))
    assert torch.allclose(loss_fn.smooth, expected)
    assert 'smooth' not in loss_fn.state_dict()


def test_prior_is_a_running_average_of_the_nearest_bins():
    loss_fn = BinnedPixelLoss(4, space='intensity', num_bins=4,
                              prior_momentum=0.5).train()
    target = torch.tensor([0., 0., 1., 1. / 3]).view(1, 1, 2, 2)
    loss_fn(torch.randn(1, 4, 2, 2), target)
    # nearest bins 0, 0, 3, 1 -> frequencies (1/2, 1/4, 0, 1/4)
    expected = 0.5 * torch.full((4, ), 0.25) + 0.5 * torch.tensor(
        [0.5, 0.25, 0.0, 0.25])
    assert torch.allclose(loss_fn.prior, expected)
    assert 'prior' in loss_fn.state_dict()


def test_bad_arguments():
    with pytest.raises(ValueError, match="Illegal space: 'hsv'"):
        BinnedPixelLoss(4, space='hsv')
    with pytest.raises(ValueError, match='Illegal rebalance'):
        BinnedPixelLoss(4, space='intensity', rebalance=2)
    with pytest.raises(ValueError, match='2 channel'):
        BinnedPixelLoss(4)(torch.randn(1, 4, 2, 2), torch.randn(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r'mask of the target grid \(1, 2, 2\)'
                       r', got \(1, 4, 4\)'):
        BinnedPixelLoss(4, space='intensity')(
            torch.randn(1, 4, 2, 2), torch.rand(1, 1, 2, 2),
            torch.ones(1, 4, 4, dtype=torch.bool))


def test_no_rebalancing_mix_keeps_weights_finite():
    loss_fn = BinnedPixelLoss(4, space='intensity', num_bins=4, rebalance=0)
    loss_fn.prior.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    loss_fn.smooth.fill_(0).fill_diagonal_(1)  # no smoothing: p = (1, 0, 0, 0)
    assert torch.isfinite(loss_fn.weights()).all()
