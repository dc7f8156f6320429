"""Image augmentation of a whole batch at once, on the batch's device.

Self-supervised pipelines usually augment one image at a time in the data
loader workers; for small images (CIFAR, Fashion-MNIST) that Python loop costs
as much as the training step. Here every op takes a batch (B, C, H, W) and one
random parameter per sample, so a batch is augmented by a handful of tensor
ops, on the CPU or the GPU alike.

Two layers:

* **Functional ops with explicit per-sample parameters** (:func:`resized_crop`,
  :func:`hflip`, :func:`adjust_brightness`, :func:`adjust_contrast`,
  :func:`adjust_saturation`, :func:`adjust_hue`, :func:`rgb_to_grayscale`,
  :func:`gaussian_blur`). Each follows the semantics of the torchvision v2
  functional op of the same name applied to every image with its own
  parameter; ``tests/test_modules/test_batch_augment.py`` checks them against
  torchvision.
* **Samplers** drawing those parameters from a ``torch.Generator``
  (:func:`sample_crop_boxes`, :func:`sample_flags`,
  :func:`sample_jitter_factors`, :func:`sample_uniform`) and the module
  :class:`BatchAugment` composing everything from a few keyword arguments.

Value range: the geometric ops (crop, flip, blur) do not care about the range;
the colour ops clamp to ``[0, value_max]`` as torchvision does for float
images (``value_max=1``) and for uint8 images (``value_max=255``), so colour
jitter belongs before mean/std normalisation.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torchvision's (ITU-R 601-2 luma) grayscale weights
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

Size = Union[int, Sequence[int]]


def _pair(size: Size) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if len(size) != 2:
        raise ValueError(f'Illegal size: {size}; expected an int or a pair '
                         '(height, width).')
    return int(size[0]), int(size[1])


def _per_sample(values: Union[Tensor, float], x: Tensor) -> Tensor:
    """Per-sample values (B,) or a scalar as a (B, 1, 1, 1) tensor like x."""
    v = torch.as_tensor(values, dtype=x.dtype, device=x.device)
    if v.numel() == 1:
        return v.reshape(1, 1, 1, 1)
    if v.shape != (x.shape[0], ):
        raise ValueError(f'Expected one value per sample, shape '
                         f'({x.shape[0]},), got {tuple(v.shape)}.')
    return v.view(-1, 1, 1, 1)


def _per_sample_flags(flags: Union[Tensor, bool], x: Tensor) -> Tensor:
    """Per-sample bools (B,) or a scalar as a (B, 1, 1, 1) bool tensor."""
    f = torch.as_tensor(flags, dtype=torch.bool, device=x.device)
    return f.reshape(-1, 1, 1, 1)


def _check_image(name: str, x: Tensor, colour: bool = False) -> None:
    if x.dim() != 4:
        raise ValueError(f'{name} expects a batch of images of shape '
                         f'(B, C, H, W), got {tuple(x.shape)}.')
    if colour and x.shape[1] not in (1, 3):
        raise ValueError(f'{name} expects 1 or 3 channels, got '
                         f'{x.shape[1]} (shape {tuple(x.shape)}).')


def _as_float(x: Tensor) -> Tensor:
    """Integer images (uint8) as float32; floating images unchanged."""
    return x if x.is_floating_point() else x.float()


# ---------------------------------------------------------------- geometry


def resized_crop(x: Tensor,
                 boxes: Tensor,
                 size: Size,
                 flips: Optional[Tensor] = None) -> Tensor:
    """Crop a box out of every image and resize it bilinearly to ``size``.

    Equals torchvision's ``resized_crop(img, top, left, height, width, size,
    InterpolationMode.BILINEAR, antialias=False)`` (crop, then
    ``F.interpolate(..., align_corners=False)``) per image, up to float32
    rounding of the sample coordinates: at most 4e-6 on [0, 1] images up to
    64 px (tested at 1e-5), 1.3e-5 on 256 px ones (224 px crops), for
    integer boxes; float boxes are sampled at sub-pixel offsets.
    It is one ``F.grid_sample`` call (``align_corners=False``) on an
    axis-aligned grid; sample coordinates are clamped to the box, as
    ``F.interpolate`` clamps them to the cropped image, so the border rows of
    an upscaled crop do not blend in pixels from outside the box.

    Args:
        x (Tensor): Images of shape (B, C, H, W), floating point.
        boxes (Tensor): Boxes of shape (B, 4) as (top, left, height, width)
            in pixels; integer or float.
        size (int | Sequence[int]): Output size, ``s`` or ``(h, w)``.
        flips (Tensor, optional): Bool tensor of shape (B,); flip these
            outputs horizontally (free: the grid is reversed). None flips
            none.

    Returns:
        Tensor: Crops of shape (B, C, h, w), ``x``'s dtype.

    Examples:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> resized_crop(x, torch.tensor([[0, 0, 2, 2]]), 2)[0, 0]
        tensor([[0., 1.],
                [4., 5.]])
    """
    _check_image('resized_crop', x)
    B, C, H, W = x.shape
    oh, ow = _pair(size)
    if boxes.shape != (B, 4):
        raise ValueError(f'Expected boxes of shape ({B}, 4), got '
                         f'{tuple(boxes.shape)}.')
    # geometry at least in float32 (a float16 grid is off by ~0.1 pixel)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    top, left, h, w = boxes.to(x.device, dtype).unbind(1)  # (B, ) each

    def coords(start: Tensor, length: Tensor, n_out: int, n_in: int) -> Tensor:
        # pixel centres of the output in input pixel coordinates: (B, n_out)
        o = torch.arange(n_out, device=x.device, dtype=dtype) + 0.5
        c = start[:, None] + o * (length / n_out)[:, None] - 0.5
        c = torch.maximum(
            torch.minimum(c, (start + length - 1)[:, None]), start[:, None])
        # normalised for grid_sample(align_corners=False)
        return (2 * c + 1) / n_in - 1

    gx = coords(left, w, ow, W)  # (B, ow)
    gy = coords(top, h, oh, H)  # (B, oh)
    if flips is not None:
        f = flips.to(x.device, torch.bool).view(B, 1)
        gx = torch.where(f, gx.flip(1), gx)
    grid = torch.stack(
        (gx[:, None, :].expand(B, oh, ow), gy[:, :, None].expand(B, oh, ow)),
        dim=-1)
    xs = x if x.dtype == dtype else x.to(dtype)
    out = F.grid_sample(
        xs, grid, mode='bilinear', padding_mode='border', align_corners=False)
    return out.to(x.dtype)


def hflip(x: Tensor, flags: Tensor) -> Tensor:
    """Flip the images with ``flags`` (bool (B,)) horizontally.

    Examples:
        >>> x = torch.arange(4.).view(2, 1, 1, 2)
        >>> hflip(x, torch.tensor([True, False])).flatten().tolist()
        [1.0, 0.0, 2.0, 3.0]
    """
    _check_image('hflip', x)
    return torch.where(_per_sample_flags(flags, x), x.flip(-1), x)


# ------------------------------------------------------------------ colour


def _blend(x: Tensor, y: Tensor, ratio: Tensor, value_max: float) -> Tensor:
    # torchvision's _blend: x * ratio + y * (1 - ratio), clamped; y is the
    # (B, 1, 1, 1) mean or the (B, 1, H, W) gray, so one full-size pass
    return torch.addcmul(y * (1.0 - ratio), x, ratio).clamp_(0, value_max)


def _gray(x: Tensor) -> Tensor:
    """Luma of RGB images (B, 3, H, W) -> (B, 1, H, W), torchvision's ops."""
    r, g, b = x.unbind(dim=1)
    return r.mul(_GRAY_WEIGHTS[0]).add_(
        g, alpha=_GRAY_WEIGHTS[1]).add_(
            b, alpha=_GRAY_WEIGHTS[2]).unsqueeze(1)


def adjust_brightness(x: Tensor, factors: Union[Tensor, float], *,
                      value_max: float) -> Tensor:
    """``x * factor`` clamped to ``[0, value_max]``, one factor per image.

    Args:
        x (Tensor): Images of shape (B, C, H, W), floating point.
        factors (Tensor | float): Tensor of shape (B,) (or a scalar), >= 0.
        value_max (float): Largest value of the image range: 1.0 for [0, 1]
            images, 255 for uint8-range ones.

    Returns:
        Tensor: Adjusted images of shape (B, C, H, W).
    """
    _check_image('adjust_brightness', x)
    return (x * _per_sample(factors, x)).clamp_(0, value_max)


def adjust_contrast(x: Tensor, factors: Union[Tensor, float], *,
                    value_max: float) -> Tensor:
    """Blend each image with the mean of its grayscale, as torchvision.

    ``x * f + mean(gray(x)) * (1 - f)`` clamped to ``[0, value_max]``; for
    one-channel images the mean of the image itself.

    Args:
        x (Tensor): Images of shape (B, C, H, W), C in {1, 3}.
        factors (Tensor | float): Tensor of shape (B,) (or a scalar), >= 0.
        value_max (float): Largest value of the image range.

    Returns:
        Tensor: Adjusted images of shape (B, C, H, W).
    """
    _check_image('adjust_contrast', x, colour=True)
    gray = _gray(x) if x.shape[1] == 3 else x
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)  # (B, 1, 1, 1)
    return _blend(x, mean, _per_sample(factors, x), value_max)


def adjust_saturation(x: Tensor, factors: Union[Tensor, float], *,
                      value_max: float) -> Tensor:
    """Blend each image with its grayscale, as torchvision.

    ``x * f + gray(x) * (1 - f)`` clamped to ``[0, value_max]``; one-channel
    images are returned unchanged (as in torchvision and PIL).

    Args:
        x (Tensor): Images of shape (B, C, H, W), C in {1, 3}.
        factors (Tensor | float): Tensor of shape (B,) (or a scalar), >= 0.
        value_max (float): Largest value of the image range.

    Returns:
        Tensor: Adjusted images of shape (B, C, H, W).
    """
    _check_image('adjust_saturation', x, colour=True)
    if x.shape[1] == 1:
        return x
    return _blend(x, _gray(x), _per_sample(factors, x), value_max)


def _rgb_to_hsv(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    # torchvision v2 _rgb_to_hsv (Pillow's algorithm), images in [0, 1];
    # h, s, v of shape (B, H, W)
    r, g, _ = x.unbind(dim=1)
    minc, maxc = torch.aminmax(x, dim=1)
    eqc = maxc == minc
    channels_range = maxc - minc
    ones = torch.ones_like(maxc)
    s = channels_range / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, channels_range).unsqueeze(1)
    rc, gc, bc = ((maxc.unsqueeze(1) - x) / divisor).unbind(dim=1)
    maxc_neq_r = maxc != r
    maxc_eq_g = maxc == g
    hg = (rc + 2.0 - bc) * (maxc_eq_g & maxc_neq_r)
    hr = (bc - gc) * ~maxc_neq_r
    hb = (gc + 4.0 - rc) * (maxc_neq_r & ~maxc_eq_g)
    h = ((hr + hg + hb) / 6.0 + 1.0).fmod(1.0)
    return h, s, maxc


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    # the closed form of torchvision's p/q/t selection (no integer gather):
    # channel n in (R, G, B) = (5, 3, 1) is v - v s clamp(min(k, 4 - k), 0, 1)
    # with k = (n + 6 h) mod 6; returns (B, 3, H, W)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    k = (n.view(1, 3, 1, 1) + 6 * h[:, None]).remainder(6)
    w = torch.minimum(k, 4 - k).clamp(0, 1)
    return v[:, None] * (1 - s[:, None] * w)


def adjust_hue(x: Tensor, shifts: Union[Tensor, float], *,
               value_max: float) -> Tensor:
    """Rotate each image's hue by its shift in [-0.5, 0.5], as torchvision.

    The images are scaled to [0, 1] by ``value_max``, converted to HSV, their
    hue shifted, converted back and rescaled. One-channel images are returned
    unchanged. About 25 elementwise ops, the most expensive colour op here.

    Args:
        x (Tensor): Images of shape (B, C, H, W), C in {1, 3}.
        shifts (Tensor | float): Tensor of shape (B,) (or a scalar).
        value_max (float): Largest value of the image range.

    Returns:
        Tensor: Adjusted images of shape (B, C, H, W).
    """
    _check_image('adjust_hue', x, colour=True)
    if x.shape[1] == 1:
        return x
    h, s, v = _rgb_to_hsv(x / value_max)
    h = (h + _per_sample(shifts, x)[:, 0]).remainder(1.0)
    return _hsv_to_rgb(h, s, v) * value_max


def rgb_to_grayscale(x: Tensor, flags: Optional[Tensor] = None) -> Tensor:
    """Grayscale (kept as C channels) for the images with ``flags``.

    The luma of torchvision's ``rgb_to_grayscale`` repeated over the three
    channels, as ``RandomGrayscale`` returns it; one-channel images are
    returned unchanged.

    Args:
        x (Tensor): Images of shape (B, C, H, W), C in {1, 3}.
        flags (Tensor, optional): Bool tensor of shape (B,); None converts
            every image.

    Returns:
        Tensor: Images of shape (B, C, H, W).
    """
    _check_image('rgb_to_grayscale', x, colour=True)
    if x.shape[1] == 1:
        return x
    gray = _gray(x).expand_as(x)
    if flags is None:
        return gray.contiguous()
    return torch.where(_per_sample_flags(flags, x), gray, x)


def gaussian_kernels(sigmas: Tensor, kernel_size: int) -> Tensor:
    """One normalised 1-D Gaussian per sigma, as torchvision builds them.

    A sigma <= 0 gives the identity kernel (1 at the centre).

    Args:
        sigmas (Tensor): Tensor of shape (B,).
        kernel_size (int): Odd kernel length K.

    Returns:
        Tensor: Kernels of shape (B, K).
    """
    half = kernel_size // 2
    t = torch.arange(
        kernel_size, dtype=sigmas.dtype, device=sigmas.device) - half
    # torchvision: softmax(-(x / sigma)^2) with x = t / sqrt(2)
    s = sigmas.clamp_min(1e-6)[:, None] * math.sqrt(2.0)
    k = torch.softmax(-(t[None] / s).pow(2), dim=1)
    delta = (t == 0).to(k.dtype).expand_as(k)
    return torch.where((sigmas > 0)[:, None], k, delta)


def gaussian_blur(x: Tensor, sigmas: Tensor, kernel_size: int) -> Tensor:
    """Gaussian blur with one sigma per image; sigma <= 0 leaves it as is.

    Equals torchvision's ``gaussian_blur(img, [K, K], [sigma, sigma])``
    (reflect padding) per image, up to float rounding: two passes of a
    depthwise (grouped) convolution whose B x C groups carry the per-sample
    1-D kernels.

    Args:
        x (Tensor): Images of shape (B, C, H, W), floating point.
        sigmas (Tensor): Tensor of shape (B,).
        kernel_size (int): Odd kernel size K, smaller than 2 * min(H, W).

    Returns:
        Tensor: Blurred images of shape (B, C, H, W).
    """
    _check_image('gaussian_blur', x)
    B, C, H, W = x.shape
    if kernel_size % 2 != 1 or kernel_size // 2 >= min(H, W):
        raise ValueError(f'Illegal blur kernel size: {kernel_size}; expected '
                         f'an odd number below {2 * min(H, W)} for images of '
                         f'{H}x{W} (reflect padding).')
    sigmas = torch.as_tensor(sigmas, device=x.device, dtype=x.dtype)
    if sigmas.shape != (B, ):
        raise ValueError(f'Expected one sigma per sample, shape ({B},), got '
                         f'{tuple(sigmas.shape)}.')
    half = kernel_size // 2
    k = gaussian_kernels(sigmas, kernel_size).repeat_interleave(C, dim=0)
    y = x.reshape(1, B * C, H, W)
    y = F.conv2d(
        F.pad(y, (half, half, 0, 0), mode='reflect'),
        k.view(B * C, 1, 1, kernel_size),
        groups=B * C)
    y = F.conv2d(
        F.pad(y, (0, 0, half, half), mode='reflect'),
        k.view(B * C, 1, kernel_size, 1),
        groups=B * C)
    # exact identity for the unblurred images, whatever the conv algorithm
    return torch.where((sigmas > 0).view(B, 1, 1, 1), y.view(B, C, H, W), x)


# ---------------------------------------------------------------- sampling


def sample_crop_boxes(batch_size: int,
                      height: int,
                      width: int,
                      scale: Tuple[float, float] = (0.08, 1.0),
                      ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                      generator: Optional[torch.Generator] = None,
                      num_tries: int = 10) -> Tensor:
    """RandomResizedCrop boxes, torchvision's rule, for a batch at once.

    Per sample: area fraction uniform in ``scale``, aspect ratio
    (width / height) log-uniform in ``ratio``, side lengths rounded; the first
    of ``num_tries`` candidates (all drawn at once) that fits the image wins
    and is placed uniformly. If none fits, the central crop torchvision falls
    back to: the whole image, or its largest central box within ``ratio``.
    Always draws ``batch_size * (2 * num_tries + 2)`` numbers, so the stream
    position does not depend on the image.

    Args:
        batch_size (int): Number of boxes B.
        height (int): Image height H.
        width (int): Image width W.
        scale (tuple[float, float]): Range of the area fraction.
            Defaults to (0.08, 1.0).
        ratio (tuple[float, float]): Range of the aspect ratio.
            Defaults to (3/4, 4/3).
        generator (torch.Generator, optional): CPU generator; None uses the
            global one.
        num_tries (int): Candidates per sample. Defaults to 10.

    Returns:
        Tensor: Long tensor of shape (B, 4), (top, left, height, width), on
        the CPU.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> boxes = sample_crop_boxes(5, 32, 32, (0.2, 1.0), generator=g)
        >>> boxes.shape, bool((boxes[:, :2] + boxes[:, 2:] <= 32).all())
        (torch.Size([5, 4]), True)
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    u = torch.rand(
        batch_size, num_tries, 2, generator=generator, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(log_ratio[0] +
                       (log_ratio[1] - log_ratio[0]) * u[..., 1])
    # torch.round, like Python's round, rounds halves to even
    w = torch.round(torch.sqrt(target * aspect))  # (B, num_tries)
    h = torch.round(torch.sqrt(target / aspect))
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)  # first True
    found = valid.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)

    # fallback: torchvision's central crop
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))

    pos = torch.rand(batch_size, 2, generator=generator, dtype=torch.float64)
    top = torch.minimum(torch.floor(pos[:, 0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(pos[:, 1] * (width - w + 1)), width - w)
    top = torch.where(found, top, torch.full_like(top, (height - fh) // 2))
    left = torch.where(found, left, torch.full_like(left, (width - fw) // 2))
    return torch.stack((top, left, h, w), dim=1).long()


def sample_flags(batch_size: int,
                 prob: float,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Bool tensor of shape (B,), each True with probability ``prob``."""
    return torch.rand(batch_size, generator=generator) < prob


def sample_uniform(batch_size: int,
                   low: float,
                   high: float,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Tensor of shape (B,) uniform in [low, high]."""
    u = torch.rand(batch_size, generator=generator)
    return low + (high - low) * u


def sample_jitter_factors(
        batch_size: int,
        strength: float,
        generator: Optional[torch.Generator] = None) -> Tensor:
    """ColorJitter factors: tensor of shape (B,) uniform in
    [max(0, 1 - strength), 1 + strength]."""
    return sample_uniform(batch_size, max(0.0, 1.0 - strength), 1.0 + strength,
                          generator)


# ------------------------------------------------------------------ module

_COLOUR_OPS = ('brightness', 'contrast', 'saturation', 'hue')


def _check_range(name: str, value: Sequence[float], low: float = 0.0) -> None:
    if (len(value) != 2 or not low <= value[0] <= value[1]
            or not all(math.isfinite(v) for v in value)):
        raise ValueError(f'Illegal {name}: {value}; expected a pair '
                         f'{low} <= min <= max.')


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'Illegal {name}: {value}; expected a probability '
                         'in [0, 1].')


class BatchAugment(nn.Module):
    """SimCLR-style augmentation of a whole batch, one draw per sample.

    Per view and sample, in this order: RandomResizedCrop to ``crop_size``
    (bilinear, no antialias), horizontal flip, colour jitter with probability
    ``jitter_prob`` (brightness, contrast, saturation, hue; fixed order, or
    one random order per view and batch with ``random_order=True`` where
    torchvision's ``ColorJitter`` draws an order per image), grayscale and
    Gaussian blur, each with its probability.

    Parameters are drawn on the CPU and moved to the batch's device in one
    copy, so the output does not depend on the device (up to float rounding).
    They come from a counter-based stream: view number ``n`` is drawn from the
    module's CPU ``torch.Generator`` seeded with a hash of (``seed``,
    ``stream``, ``n``). The stream's whole state, ``seed`` and ``n``, is two
    int64 buffers (``rng_seed``, ``rng_calls``), so it is in ``state_dict()``
    and every checkpoint, and loading one resumes the stream exactly; as
    plain buffers they also survive mmengine's ``EMAHook`` (which copies and
    swaps buffers) and DDP's buffer broadcast. ``stream`` (e.g. the rank) is
    not saved: each process resumes its own stream. Each view draws the same
    parameters whatever ops are enabled, so turning on blur does not change
    the crops.

    Part of the design is borrowed from kornia's augmentation module
    `<https://github.com/kornia/kornia>`_; the semantics are torchvision's.

    Args:
        crop_size (int | Sequence[int]): Output size, ``s`` or ``(h, w)``.
        crop_scale (tuple[float, float]): Area fraction range of the crop.
            Defaults to (0.2, 1.0).
        crop_ratio (tuple[float, float]): Aspect ratio range of the crop.
            Defaults to (3/4, 4/3).
        flip_prob (float): Probability of a horizontal flip. Defaults to 0.5.
        brightness (float): Brightness strength s, factor uniform in
            [max(0, 1 - s), 1 + s]. Defaults to 0.4.
        contrast (float): Contrast strength, as brightness. Defaults to 0.4.
        saturation (float): Saturation strength, as brightness.
            Defaults to 0.0.
        hue (float): Hue strength in [0, 0.5], shift uniform in [-hue, hue].
            Defaults to 0.0.
        jitter_prob (float): Probability of the colour jitter.
            Defaults to 0.8.
        grayscale_prob (float): Probability of grayscale. Defaults to 0.0.
        blur_prob (float): Probability of a Gaussian blur. Defaults to 0.0.
        blur_sigma (tuple[float, float]): Range of the blur sigma in pixels
            of the output. Defaults to (0.1, 2.0).
        blur_kernel_size (int, optional): Odd blur kernel size; None takes
            10% of the crop size, made odd (SimCLR's 23 for 224).
            Defaults to None.
        random_order (bool): One random order of the colour ops per view
            (shared by the batch) instead of the fixed order.
            Defaults to False.
        num_views (int): Views returned per call, each drawn independently.
            Defaults to 1.
        value_max (float): Top of the input's value range, where the colour
            ops clamp: 255 for uint8-range images, 1.0 for [0, 1] ones.
            Defaults to 255.
        seed (int, optional): Seed of the stream, in [0, 2**63); None draws
            one from torch's global generator (so ``torch.manual_seed`` fixes
            it). Defaults to None.
        stream (int): Index of an independent stream for the same seed, such
            as the distributed rank; not saved in the state. Defaults to 0.

    Examples:
        >>> aug = BatchAugment(crop_size=16, num_views=2, seed=0)
        >>> x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
        >>> v0, v1 = aug(x)
        >>> v0.shape, v0.dtype
        (torch.Size([4, 3, 16, 16]), torch.float32)

    Raises:
        ValueError: On an illegal range, probability or strength.
    """

    rng_seed: Tensor
    rng_calls: Tensor

    def __init__(self,
                 crop_size: Size,
                 crop_scale: Tuple[float, float] = (0.2, 1.0),
                 crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 flip_prob: float = 0.5,
                 brightness: float = 0.4,
                 contrast: float = 0.4,
                 saturation: float = 0.0,
                 hue: float = 0.0,
                 jitter_prob: float = 0.8,
                 grayscale_prob: float = 0.0,
                 blur_prob: float = 0.0,
                 blur_sigma: Tuple[float, float] = (0.1, 2.0),
                 blur_kernel_size: Optional[int] = None,
                 random_order: bool = False,
                 num_views: int = 1,
                 value_max: float = 255.0,
                 seed: Optional[int] = None,
                 stream: int = 0) -> None:
        super().__init__()
        self.crop_size = _pair(crop_size)
        if min(self.crop_size) <= 0:
            raise ValueError(f'Illegal crop_size: {crop_size}.')
        _check_range('crop_scale', crop_scale)
        if crop_scale[1] <= 0:
            raise ValueError(f'Illegal crop_scale: {crop_scale}; the largest '
                             'area fraction must be > 0.')
        _check_range('crop_ratio', crop_ratio)
        if crop_ratio[0] <= 0:
            raise ValueError(f'Illegal crop_ratio: {crop_ratio}; ratios must '
                             'be > 0.')
        for name, p in (('flip_prob', flip_prob), ('jitter_prob', jitter_prob),
                        ('grayscale_prob', grayscale_prob), ('blur_prob',
                                                             blur_prob)):
            _check_prob(name, p)
        for name, s in (('brightness', brightness), ('contrast', contrast),
                        ('saturation', saturation)):
            if not 0.0 <= s < math.inf:
                raise ValueError(f'Illegal {name}: {s}; expected >= 0.')
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f'Illegal hue: {hue}; expected a value in '
                             '[0, 0.5].')
        _check_range('blur_sigma', blur_sigma)
        if blur_kernel_size is None:
            blur_kernel_size = int(0.1 * min(self.crop_size)) // 2 * 2 + 1
        if blur_kernel_size < 1 or blur_kernel_size % 2 != 1:
            raise ValueError(f'Illegal blur_kernel_size: {blur_kernel_size}; '
                             'expected an odd positive number.')
        if num_views < 1:
            raise ValueError(f'Illegal num_views: {num_views}; expected >= 1.')
        if value_max <= 0:
            raise ValueError(f'Illegal value_max: {value_max}; expected > 0.')
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1]))
        self.flip_prob = float(flip_prob)
        self.strengths = dict(
            brightness=float(brightness),
            contrast=float(contrast),
            saturation=float(saturation),
            hue=float(hue))
        self.jitter_prob = float(jitter_prob)
        self.grayscale_prob = float(grayscale_prob)
        self.blur_prob = float(blur_prob)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.blur_kernel_size = int(blur_kernel_size)
        self.random_order = bool(random_order)
        self.num_views = int(num_views)
        self.value_max = float(value_max)
        if seed is None:
            seed = int(torch.randint(2**62, (1, )).item())
        if not 0 <= seed < 2**63:
            raise ValueError(f'Illegal seed: {seed}; expected an int in '
                             '[0, 2**63).')
        self.stream = int(stream)
        self.generator = torch.Generator(device='cpu')
        # the stream state: Python ints for drawing (no device sync), mirrored
        # in persistent buffers for state_dict()
        self._seed, self._calls = int(seed), 0
        self.register_buffer(
            'rng_seed', torch.tensor(self._seed), persistent=True)
        self.register_buffer('rng_calls', torch.tensor(0), persistent=True)
        self.register_load_state_dict_post_hook(_reload_stream)

    @property
    def seed(self) -> int:
        """Seed of the stream."""
        return self._seed

    @property
    def calls(self) -> int:
        """Views drawn so far (the stream position)."""
        return self._calls

    def _next_generator(self) -> torch.Generator:
        """The generator for the next view; advances the stream."""
        self.generator.manual_seed(_mix(self._seed, self.stream, self._calls))
        self._calls += 1
        self.rng_calls.fill_(self._calls)  # async on a GPU
        return self.generator

    # -- parameters

    @torch.no_grad()
    def sample_params(self, batch_size: int, height: int,
                      width: int) -> Dict[str, Tensor]:
        """Draw one view's parameters for a batch of H x W images.

        Advances the stream by one.

        Returns:
            dict[str, Tensor]: On the CPU: ``boxes`` (B, 4) long, ``flip``,
            ``jitter``, ``grayscale`` (B,) bool, ``brightness``,
            ``contrast``, ``saturation`` (B,) factors (1 where no jitter),
            ``hue`` (B,) shifts (0 where no jitter), ``order`` (4,) the
            colour op order, ``blur_sigma`` (B,) (0 where no blur).
        """
        g, B = self._next_generator(), batch_size
        boxes = sample_crop_boxes(
            B, height, width, self.crop_scale, self.crop_ratio, generator=g)
        flip = sample_flags(B, self.flip_prob, g)
        jitter = sample_flags(B, self.jitter_prob, g)
        params = dict(boxes=boxes, flip=flip, jitter=jitter)
        for name in ('brightness', 'contrast', 'saturation'):
            f = sample_jitter_factors(B, self.strengths[name], g)
            params[name] = torch.where(jitter, f, torch.ones_like(f))
        hue = self.strengths['hue']
        shift = sample_uniform(B, -hue, hue, g)
        params['hue'] = torch.where(jitter, shift, torch.zeros_like(shift))
        order = torch.randperm(len(_COLOUR_OPS), generator=g)
        params['order'] = order if self.random_order else torch.arange(4)
        params['grayscale'] = sample_flags(B, self.grayscale_prob, g)
        blur = sample_flags(B, self.blur_prob, g)
        sigma = sample_uniform(B, *self.blur_sigma, generator=g)
        params['blur_sigma'] = torch.where(blur, sigma,
                                           torch.zeros_like(sigma))
        return params

    def transform(self, x: Tensor, params: Dict[str, Tensor]) -> Tensor:
        """Augment ``x`` (B, C, H, W) with explicit ``params``.

        ``params`` are those of :meth:`sample_params`, on the CPU: the
        decisions which ops to run are taken there, without a device sync.

        Returns:
            Tensor: Augmented images of shape (B, C, h, w), float.
        """
        _check_image('BatchAugment', x)
        x_in, x = x, _as_float(x)
        B, C, H, W = x.shape
        boxes, flip = params['boxes'], params['flip']
        jitter = params['jitter']
        colour = [
            n for n in (_COLOUR_OPS[int(i)] for i in params['order'])
            if self.strengths[n] > 0 and (n != 'hue' or C == 3) and (
                n != 'saturation' or C == 3)
        ]
        do_jitter = bool(jitter.any()) and bool(colour)
        do_gray = C == 3 and bool(params['grayscale'].any())
        do_blur = bool((params['blur_sigma'] > 0).any())
        full = torch.tensor([0, 0, H, W])
        do_crop = (self.crop_size != (H, W) or not bool((boxes == full).all()))
        do_flip = bool(flip.any())

        # one host-to-device copy for all per-sample values: (12, B), one
        # contiguous row per value (strided columns slow the broadcasts down)
        rows = [boxes.t(), flip[None], jitter[None]]
        rows += [params[n][None] for n in _COLOUR_OPS]
        rows += [params['grayscale'][None], params['blur_sigma'][None]]
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        dev = torch.cat([r.to(torch.float64) for r in rows]).to(
            x.device, dtype)
        dev_boxes = dev[0:4].t()  # (B, 4)
        dev_flip, dev_jitter = dev[4] > 0, dev[5] > 0
        factors = dict(zip(_COLOUR_OPS, dev[6:10].unbind(0)))
        dev_gray, dev_sigma = dev[10] > 0, dev[11]

        if do_crop:
            x = resized_crop(
                x,
                dev_boxes,
                self.crop_size,
                flips=dev_flip if do_flip else None)
        elif do_flip:
            x = hflip(x, dev_flip)
        if do_jitter:
            y = x
            for name in colour:
                y = _COLOUR_FNS[name](
                    y, factors[name], value_max=self.value_max)
            x = torch.where(dev_jitter.view(B, 1, 1, 1), y, x)
        if do_gray:
            x = rgb_to_grayscale(x, dev_gray)
        if do_blur:
            x = gaussian_blur(x, dev_sigma, self.blur_kernel_size)
        return x.clone() if x is x_in else x  # views never alias the input

    def forward(self, x: Tensor) -> List[Tensor]:
        """Augment a batch ``num_views`` times.

        Args:
            x (Tensor): Images of shape (B, C, H, W); uint8 or float, values
                in ``[0, value_max]`` for the colour ops.

        Returns:
            list[Tensor]: ``num_views`` tensors of shape (B, C, h, w), float.
        """
        _check_image('BatchAugment', x)
        B, _, H, W = x.shape
        return [
            self.transform(x, self.sample_params(B, H, W))
            for _ in range(self.num_views)
        ]

    def extra_repr(self) -> str:
        return (f'crop_size={self.crop_size}, crop_scale={self.crop_scale}, '
                f'crop_ratio={self.crop_ratio}, flip_prob={self.flip_prob}, '
                f'strengths={self.strengths}, jitter_prob={self.jitter_prob}, '
                f'grayscale_prob={self.grayscale_prob}, '
                f'blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, '
                f'num_views={self.num_views}, value_max={self.value_max}, '
                f'seed={self.seed}, stream={self.stream}')


_MASK64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _mix(*values: int) -> int:
    """A 63-bit seed hashed from integers (splitmix64 chained)."""
    h = 0
    for v in values:
        h = _splitmix64(h ^ (v & _MASK64))
    return h >> 1


def _reload_stream(module: nn.Module, incompatible_keys: object) -> None:
    """After ``load_state_dict``: continue the loaded stream."""
    assert isinstance(module, BatchAugment)
    module._seed = int(module.rng_seed.item())
    module._calls = int(module.rng_calls.item())


_COLOUR_FNS = dict(
    brightness=adjust_brightness,
    contrast=adjust_contrast,
    saturation=adjust_saturation,
    hue=adjust_hue)
