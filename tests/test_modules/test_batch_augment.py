"""Batched augmentation against torchvision's per-sample transforms."""
import doctest
import io
import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from mm_instdisc.modules import batch_augment
from mm_instdisc.modules.batch_augment import (BatchAugment, adjust_brightness,
                                               adjust_contrast, adjust_hue,
                                               adjust_saturation,
                                               gaussian_blur, hflip,
                                               resized_crop, rgb_to_grayscale,
                                               sample_crop_boxes,
                                               sample_jitter_factors)

BILINEAR = T.InterpolationMode.BILINEAR
# resized_crop vs torchvision's crop + F.interpolate on [0, 1] images: the
# two differ only in float32 rounding of the sample coordinates (measured max
# |diff| 4e-6 over 1600 random boxes and sizes on images up to 64 px); the
# colour ops and the blur at most 1.5e-6, the whole BatchAugment 3e-6
CROP_ATOL = 1e-5
ATOL = 1e-5


def images(b=4, c=3, h=20, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = torch.sort(a.double())[0], torch.sort(b.double())[0]
    grid = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, grid, right=True) / a.numel()
    cdf_b = torch.searchsorted(b, grid, right=True) / b.numel()
    return float((cdf_a - cdf_b).abs().max())


# ------------------------------------------------------------ crop sampler


def test_crop_boxes_inside_and_in_range():
    g = torch.Generator().manual_seed(0)
    H, W = 600, 800
    boxes = sample_crop_boxes(
        20000, H, W, (0.08, 0.5), (3 / 4, 4 / 3), generator=g).double()
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (h >= 1).all() and (w >= 1).all()
    assert (top + h <= H).all() and (left + w <= W).all()
    # every candidate fits here, so area and log-ratio are the drawn ones
    # (up to the rounding of the sides)
    frac = h * w / (H * W)
    assert frac.min() > 0.08 - 0.01 and frac.max() < 0.5 + 0.01
    log_r = torch.log(w / h)
    assert log_r.min() > math.log(3 / 4) - 0.02
    assert log_r.max() < math.log(4 / 3) + 0.02
    assert abs(float(log_r.mean())) < 0.005  # symmetric range
    # coarse uniformity: 10 bins, each within 5 sigma of 2000
    for v, lo, hi in ((log_r, math.log(3 / 4), math.log(4 / 3)), (frac, 0.08,
                                                                  0.5)):
        counts = torch.histc(v.clamp(lo, hi).float(), bins=10, min=lo, max=hi)
        assert (counts - 2000).abs().max() < 5 * math.sqrt(2000 * 0.9)
    # positions uniform over the free range
    rel = top / (H - h).clamp_min(1)
    assert abs(float(rel.mean()) - 0.5) < 0.01


def test_crop_boxes_distribution_matches_torchvision():
    # default-like range with rejections: compare with torchvision's sampler
    H, W, n = 32, 40, 4000
    g = torch.Generator().manual_seed(1)
    ours = sample_crop_boxes(
        n, H, W, (0.2, 1.0), (3 / 4, 4 / 3), generator=g).double()
    rrc = T.RandomResizedCrop(32, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
    torch.manual_seed(1)
    ref = torch.tensor([[p['top'], p['left'], p['height'], p['width']]
                        for p in (rrc.make_params([torch.empty(3, H, W)])
                                  for _ in range(n))],
                       dtype=torch.float64)
    # KS critical value at alpha=0.001 for n=m=4000 is about 0.044
    for col in range(4):
        assert ks_statistic(ours[:, col], ref[:, col]) < 0.05, col
    area = lambda b: b[:, 2] * b[:, 3]  # noqa: E731
    assert ks_statistic(area(ours), area(ref)) < 0.05


@pytest.mark.parametrize('H,W,ratio', [(32, 48, (1.0, 1.0)),
                                       (48, 32, (1.0, 1.0)),
                                       (30, 40, (0.5, 2.0)),
                                       (20, 60, (1.0, 2.0)),
                                       (60, 20, (0.9, 2.0))])
def test_crop_boxes_fallback_is_torchvision_central_crop(H, W, ratio):
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(8, H, W, (2.0, 3.0), ratio, generator=g)
    rrc = T.RandomResizedCrop(8, scale=(2.0, 3.0), ratio=ratio)
    p = rrc.make_params([torch.empty(3, H, W)])
    expected = torch.tensor([p['top'], p['left'], p['height'], p['width']])
    assert (boxes == expected).all()


def test_crop_boxes_mixed_fallback():
    # tiny images: some samples find a box, the others fall back
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(
        4000, 4, 4, (0.9, 1.0), (0.5, 2.0), generator=g, num_tries=1)
    full = (boxes == torch.tensor([0, 0, 4, 4])).all(1)
    assert 0 < int(full.sum()) < 4000
    assert ((boxes[:, :2] + boxes[:, 2:]) <= 4).all()


def test_jitter_factors_range():
    g = torch.Generator().manual_seed(0)
    f = sample_jitter_factors(10000, 0.4, g)
    assert f.min() >= 0.6 and f.max() <= 1.4
    assert abs(float(f.mean()) - 1.0) < 0.01
    f = sample_jitter_factors(1000, 1.5, g)
    assert f.min() >= 0.0 and f.max() <= 2.5


# --------------------------------------------- functional vs torchvision


@pytest.mark.parametrize('size', [16, (12, 20), 30])
def test_resized_crop_matches_torchvision(size):
    x = images(b=5, h=24, w=28)
    # upscaling, downscaling, full image, thin boxes, boxes at the borders
    boxes = torch.tensor([[0, 0, 24, 28], [3, 5, 10, 7], [10, 0, 14, 28],
                          [0, 20, 5, 8], [7, 9, 1, 2]])
    flips = torch.tensor([False, True, False, True, True])
    out = resized_crop(x, boxes, size)
    out_f = resized_crop(x, boxes, size, flips=flips)
    sz = [size, size] if isinstance(size, int) else list(size)
    for i, (t, l, h, w) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(
            x[i], t, l, h, w, sz, interpolation=BILINEAR, antialias=False)
        assert out[i].shape == ref.shape
        torch.testing.assert_close(out[i], ref, atol=CROP_ATOL, rtol=0)
        ref_f = TF.horizontal_flip(ref) if flips[i] else ref
        torch.testing.assert_close(out_f[i], ref_f, atol=CROP_ATOL, rtol=0)


def test_resized_crop_float_boxes_and_dtypes():
    x = images(b=2, h=16, w=16)
    a = resized_crop(x, torch.tensor([[2, 3, 8, 8], [0, 0, 16, 16]]), 8)
    b = resized_crop(x, torch.tensor([[2., 3., 8., 8.], [0., 0., 16., 16.]]),
                     8)
    torch.testing.assert_close(a, b)
    # float16 images are sampled on a float32 grid
    half = resized_crop(x.half(), torch.tensor([[2, 3, 8, 8]] * 2), 8)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half[0].float(), a[0], atol=1e-3, rtol=0)
    x64 = x.double()
    out64 = resized_crop(x64, torch.tensor([[2, 3, 8, 8]] * 2), 8)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64[0].float(), a[0], atol=1e-6, rtol=0)


def test_hflip():
    x = images()
    flags = torch.tensor([True, False, True, False])
    out = hflip(x, flags)
    for i in range(4):
        ref = TF.horizontal_flip(x[i]) if flags[i] else x[i]
        assert torch.equal(out[i], ref)


FACTORS = torch.tensor([0.0, 0.6, 1.0, 1.7])


@pytest.mark.parametrize('ours,theirs,channels', [
    (adjust_brightness, TF.adjust_brightness, 3),
    (adjust_brightness, TF.adjust_brightness, 1),
    (adjust_contrast, TF.adjust_contrast, 3),
    (adjust_contrast, TF.adjust_contrast, 1),
    (adjust_saturation, TF.adjust_saturation, 3),
    (adjust_saturation, TF.adjust_saturation, 1),
])
def test_colour_ops_match_torchvision(ours, theirs, channels):
    x = images(c=channels)
    out = ours(x, FACTORS, value_max=1.0)
    for i, f in enumerate(FACTORS.tolist()):
        ref = theirs(x[i], f)
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)
    # the value range only scales the result
    out255 = ours(x * 255, FACTORS, value_max=255.0)
    torch.testing.assert_close(out255, out * 255, atol=1e-3, rtol=0)


def test_hue_matches_torchvision():
    x = images()
    shifts = torch.tensor([-0.5, -0.1, 0.0, 0.37])
    out = adjust_hue(x, shifts, value_max=1.0)
    for i, s in enumerate(shifts.tolist()):
        torch.testing.assert_close(
            out[i], TF.adjust_hue(x[i], s), atol=ATOL, rtol=0)
    out255 = adjust_hue(x * 255, shifts, value_max=255.0)
    torch.testing.assert_close(out255, out * 255, atol=1e-3, rtol=0)
    assert torch.equal(adjust_hue(x[:, :1], shifts, value_max=1.0), x[:, :1])


def test_grayscale_matches_torchvision():
    x = images()
    flags = torch.tensor([True, False, True, True])
    out = rgb_to_grayscale(x, flags)
    for i in range(4):
        ref = TF.rgb_to_grayscale(x[i], 3) if flags[i] else x[i]
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(
        rgb_to_grayscale(x), TF.rgb_to_grayscale(x, 3), atol=ATOL, rtol=0)
    assert torch.equal(rgb_to_grayscale(x[:, :1], flags), x[:, :1])


@pytest.mark.parametrize('kernel_size', [3, 7, 11])
def test_blur_matches_torchvision(kernel_size):
    x = images(b=4, h=12, w=16)
    sigmas = torch.tensor([0.1, 0.8, 2.0, 0.0])  # 0: no blur
    out = gaussian_blur(x, sigmas, kernel_size)
    for i, s in enumerate(sigmas.tolist()):
        if s == 0:
            assert torch.equal(out[i], x[i])
            continue
        ref = TF.gaussian_blur(x[i], [kernel_size, kernel_size], [s, s])
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)


def test_blur_rejects_bad_kernel():
    with pytest.raises(ValueError, match='blur kernel size: 4'):
        gaussian_blur(images(), torch.ones(4), 4)
    with pytest.raises(ValueError, match='blur kernel size: 41'):
        gaussian_blur(images(), torch.ones(4), 41)


def test_colour_ops_reject_four_channels():
    with pytest.raises(ValueError, match='1 or 3 channels'):
        adjust_contrast(images(c=4), FACTORS, value_max=1.0)


# ------------------------------------------------------ BatchAugment


def zero_strength(**kwargs):
    cfg = dict(
        crop_size=20,
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        flip_prob=0.0,
        jitter_prob=0.0,
        blur_prob=0.0,
        seed=0)
    return BatchAugment(**{**cfg, **kwargs})


def test_identity_at_zero_strength():
    x = images(h=20, w=20) * 255
    out, = zero_strength()(x)
    assert torch.equal(out, x)
    # jitter always applied, but with strength 0 / factor 1
    aug = zero_strength(
        jitter_prob=1.0,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        hue=0.0,
        grayscale_prob=0.0)
    assert torch.equal(aug(x)[0], x)
    # strengths > 0 but the jitter never drawn
    assert torch.equal(zero_strength(saturation=0.4, hue=0.2)(x)[0], x)
    # uint8 in, float out
    x8 = x.round().to(torch.uint8)
    assert torch.equal(zero_strength()(x8)[0], x8.float())


def reference_view(x, p, aug):
    """Per-sample torchvision composition with the same parameters."""
    ops = {
        'brightness': TF.adjust_brightness,
        'contrast': TF.adjust_contrast,
        'saturation': TF.adjust_saturation,
        'hue': TF.adjust_hue
    }
    order = [['brightness', 'contrast', 'saturation', 'hue'][i]
             for i in p['order'].tolist()]
    out = []
    for i in range(x.shape[0]):
        t, l, h, w = p['boxes'][i].tolist()
        y = TF.resized_crop(
            x[i],
            t,
            l,
            h,
            w,
            list(aug.crop_size),
            interpolation=BILINEAR,
            antialias=False)
        if p['flip'][i]:
            y = TF.horizontal_flip(y)
        if p['jitter'][i]:
            for name in order:
                if aug.strengths[name] > 0:
                    y = ops[name](y, float(p[name][i]))
        if p['grayscale'][i]:
            y = TF.rgb_to_grayscale(y, 3)
        s = float(p['blur_sigma'][i])
        if s > 0:
            k = aug.blur_kernel_size
            y = TF.gaussian_blur(y, [k, k], [s, s])
        out.append(y)
    return torch.stack(out)


@pytest.mark.parametrize('random_order', [False, True])
def test_full_pipeline_matches_torchvision(random_order):
    x = images(b=16, h=24, w=28)
    aug = BatchAugment(
        crop_size=16,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        grayscale_prob=0.3,
        blur_prob=0.5,
        value_max=1.0,
        random_order=random_order,
        seed=3)
    p = aug.sample_params(16, 24, 28)
    assert p['jitter'].any() and not p['jitter'].all()
    assert p['flip'].any() and p['grayscale'].any()
    assert (p['blur_sigma'] > 0).any() and (p['blur_sigma'] == 0).any()
    out = aug.transform(x, p)
    torch.testing.assert_close(
        out, reference_view(x, p, aug), atol=1e-4, rtol=0)


def test_views_shapes_uint8_and_range():
    x = (images(b=6, h=32, w=32) * 255).to(torch.uint8)
    aug = BatchAugment(crop_size=24, num_views=3, seed=0)
    views = aug(x)
    assert len(views) == 3
    for v in views:
        assert v.shape == (6, 3, 24, 24) and v.dtype == torch.float32
        assert v.min() >= 0 and v.max() <= 255
    assert not torch.equal(views[0], views[1])
    # the same draws on float input give the same result
    again = BatchAugment(crop_size=24, num_views=3, seed=0)(x.float())
    for a, b in zip(views, again):
        assert torch.equal(a, b)


def test_seeded_and_checkpoint_safe():
    x = images(b=8, h=32, w=32) * 255
    kw = dict(
        crop_size=16,
        saturation=0.4,
        hue=0.1,
        grayscale_prob=0.2,
        blur_prob=0.5,
        num_views=2)
    a, b = BatchAugment(seed=7, **kw), BatchAugment(seed=7, **kw)
    for va, vb in zip(a(x), b(x)):
        assert torch.equal(va, vb)
    assert not torch.equal(BatchAugment(seed=8, **kw)(x)[0], a(x)[0])

    # save, draw the next batch, restore into a differently seeded module
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    expected = a(x)
    c = BatchAugment(seed=123, **kw)
    buf.seek(0)
    c.load_state_dict(torch.load(buf))
    for ve, vc in zip(expected, c(x)):
        assert torch.equal(ve, vc)
    assert c.seed == 7 and c.calls == a.calls
    # the state is two int64 buffers
    sd = a.state_dict()
    assert set(sd) == {'rng_seed', 'rng_calls'}
    assert int(sd['rng_seed']) == 7 and int(sd['rng_calls']) == a.calls == 6


def test_streams_are_independent_and_resume_per_stream():
    x = images(b=8, h=32, w=32) * 255
    r0 = BatchAugment(crop_size=16, seed=7, stream=0)
    r1 = BatchAugment(crop_size=16, seed=7, stream=1)
    assert not torch.equal(r0(x)[0], r1(x)[0])
    # stream 0's checkpoint (seed, calls) resumes stream 1 in step
    sd = r0.state_dict()
    expected = r1(x)[0]
    fresh = BatchAugment(crop_size=16, seed=0, stream=1)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh(x)[0], expected)


def test_is_a_plain_module():
    import copy
    aug = BatchAugment(crop_size=8, seed=0)
    seen = []
    aug.apply(lambda m: seen.append(type(m).__name__))  # nn.Module.apply
    assert seen == ['BatchAugment']
    x = images(h=8, w=8) * 255
    twin = copy.deepcopy(aug)
    assert torch.equal(twin(x)[0], aug(x)[0])
    assert aug.to(torch.float64).rng_calls.dtype == torch.int64


def test_seed_none_follows_global_seed():
    torch.manual_seed(5)
    a = BatchAugment(crop_size=8)
    torch.manual_seed(5)
    b = BatchAugment(crop_size=8)
    assert a.seed == b.seed


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_same_result_on_gpu():
    x = images(b=8, h=32, w=32) * 255
    kw = dict(
        crop_size=16,
        saturation=0.4,
        hue=0.1,
        grayscale_prob=0.2,
        blur_prob=0.5,
        num_views=2,
        seed=0)
    cpu = BatchAugment(**kw)(x)
    gpu = BatchAugment(**kw).cuda()(x.cuda())
    for c, g in zip(cpu, gpu):
        assert g.is_cuda
        torch.testing.assert_close(g.cpu(), c, atol=1e-3, rtol=0)


@pytest.mark.parametrize('kwargs,match', [
    (dict(crop_scale=(0.5, 0.2)), 'crop_scale'),
    (dict(crop_ratio=(0.0, 1.0)), 'crop_ratio'),
    (dict(flip_prob=1.5), 'flip_prob'),
    (dict(brightness=-0.1), 'brightness'),
    (dict(hue=0.6), 'hue'),
    (dict(blur_kernel_size=4), 'blur_kernel_size'),
    (dict(num_views=0), 'num_views'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchAugment(crop_size=8, **kwargs)


def test_docstring_examples():
    result = doctest.testmod(batch_augment, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
