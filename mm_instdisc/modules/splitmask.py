"""SplitMask maths in plain PyTorch: masks, tokeniser, losses, one step.

`Are Large-scale Datasets Necessary for Self-Supervised Pre-training?
<https://arxiv.org/abs/2112.10740>`_ (El-Nouby et al., 2021).

The patches of an image are split into two disjoint sets A and B that
together cover the image. One encoder sees only A, the same encoder sees
only B; a small decoder inpaints each branch to all positions. Each branch
predicts the discrete tokens of the *other* set (masked-image-modelling
cross-entropy), and the average-pooled decoder outputs of the two branches
of an image are matched by InfoNCE against the other images of the batch.

Everything here imports only torch; the OpenMMLab wrappers live in
``mm_instdisc.models`` (``SplitMask``, ``SplitMaskViT``,
``SplitMaskDecoder``, ``SplitMaskHead``).
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (PeriodicCheck, check_batch, check_finite,
                      check_temperature, float32_math)

GatherFn = Callable[[Tensor], Tuple[Tensor, int]]

MASK_MODES = ('block', 'uniform')
TOKENIZER_MODES = ('random_projection', 'random_patches', 'kmeans')


def _grid(grid: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(grid, int):
        grid = (grid, grid)
    h, w = (int(v) for v in grid)
    if h < 1 or w < 1:
        raise ValueError(f'Illegal patch grid: {tuple(grid)}; expected two '
                         'positive sizes (patches per column, per row).')
    return h, w


def block_mask(height: int, width: int, num_masked: int,
               generator: Optional[torch.Generator] = None,
               min_block_patches: int = 4, min_aspect: float = 0.3,
               max_attempts: int = 100) -> Tensor:
    """A BEiT-style blockwise mask with exactly ``num_masked`` patches.

    Rectangular blocks (area drawn uniformly between ``min_block_patches``
    and the number still missing, log-uniform aspect ratio in
    ``[min_aspect, 1 / min_aspect]``, uniform position) are added until the
    target count is reached. The target is met exactly: a block that would
    overshoot keeps only as many of its new patches (in raster order) as are
    missing ("trim"), and if ``max_attempts`` blocks were not enough, random
    unmasked patches are added ("pad").

    Args:
        height (int): Patches per column.
        width (int): Patches per row.
        num_masked (int): Exact number of masked patches, 0..height*width.
        generator (torch.Generator, optional): Source of randomness; the
            global generator if None.
        min_block_patches (int): Smallest block area. Defaults to 4.
        min_aspect (float): Smallest aspect ratio of a block. Defaults to
            0.3.
        max_attempts (int): Blocks tried before padding. Defaults to 100.

    Returns:
        Tensor: Bool tensor of shape (height * width, ), raster order,
        True = masked.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = block_mask(14, 14, 98, generator=g)
        >>> int(m.sum())
        98
    """
    n = height * width
    if not 0 <= num_masked <= n:
        raise ValueError(f'Illegal num_masked: {num_masked}; expected 0..{n} '
                         f'for a {height}x{width} patch grid.')
    if not 0.0 < min_aspect <= 1.0:
        raise ValueError(f'Illegal min_aspect: {min_aspect}; expected (0, 1].')
    mask = [False] * n
    count = 0
    lo, hi = math.log(min_aspect), math.log(1.0 / min_aspect)
    draws = torch.rand(4 * max_attempts, generator=generator).tolist()
    for t in range(max_attempts):
        missing = num_masked - count
        if missing <= 0:
            break
        u_area, u_aspect, u_top, u_left = draws[4 * t:4 * t + 4]
        top_area = max(missing, min_block_patches)
        area = min_block_patches + u_area * (top_area - min_block_patches)
        aspect = math.exp(lo + u_aspect * (hi - lo))
        bh = min(height, max(1, round(math.sqrt(area * aspect))))
        bw = min(width, max(1, round(math.sqrt(area / aspect))))
        top = min(int(u_top * (height - bh + 1)), height - bh)
        left = min(int(u_left * (width - bw + 1)), width - bw)
        new = [i * width + j for i in range(top, top + bh)
               for j in range(left, left + bw) if not mask[i * width + j]]
        for k in new[:missing]:  # trim an overshooting block
            mask[k] = True
        count += min(len(new), missing)
    out = torch.tensor(mask, dtype=torch.bool)
    if count < num_masked:  # pad with random free patches
        free = (~out).nonzero().flatten()
        pick = torch.randperm(free.numel(), generator=generator)
        out[free[pick[:num_masked - count]]] = True
    return out


class SplitMaskGenerator:
    """Splits the patches of each image into disjoint subsets A and B.

    A and B always cover all patches (B is the complement of A), and their
    sizes are the same for every image of the batch, so the kept tokens of
    a batch can be stacked into (B, L_A, C) and (B, L_B, C):

    - ``mode='block'`` (paper default, ``ratio=0.5``): A is a BEiT-style
      blockwise mask of exactly ``round(ratio * L)`` patches
      (:func:`block_mask`), B its complement.
    - ``mode='uniform'`` (for the smallest data sets, ``ratio=0.25``): A is
      a uniformly random 25% of the patches and B the other 75%. The branch
      that sees A inpaints the 75% of B (MAE-like 75% masking); the branch
      that sees B inpaints the 25% of A.

    Args:
        grid (int or tuple[int, int]): Patch grid (height, width).
        mode (str): ``'block'`` or ``'uniform'``. Defaults to ``'block'``.
        ratio (float, optional): Fraction of the patches in A; None means
            0.5 for ``'block'`` and 0.25 for ``'uniform'``.
        min_block_patches (int): Smallest block of ``'block'`` mode.
            Defaults to 4 (BEiT uses 16 on a 14x14 grid).
        min_aspect (float): Smallest block aspect ratio. Defaults to 0.3.

    Raises:
        ValueError: On an unknown mode or a ratio that leaves A or B empty.

    Examples:
        >>> gen = SplitMaskGenerator(8, mode='uniform')
        >>> ids_a, ids_b = gen(2, generator=torch.Generator().manual_seed(0))
        >>> ids_a.shape, ids_b.shape
        (torch.Size([2, 16]), torch.Size([2, 48]))
    """

    def __init__(self, grid: Union[int, Sequence[int]], mode: str = 'block',
                 ratio: Optional[float] = None, min_block_patches: int = 4,
                 min_aspect: float = 0.3) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f'Illegal mask mode: {mode!r}; expected one of '
                             f'{MASK_MODES}.')
        self.height, self.width = _grid(grid)
        self.num_patches = self.height * self.width
        self.mode = mode
        if ratio is None:
            ratio = 0.5 if mode == 'block' else 0.25
        self.ratio = float(ratio)
        self.num_a = int(round(self.ratio * self.num_patches))
        if not 0 < self.num_a < self.num_patches:
            raise ValueError(
                f'Illegal mask ratio: {ratio}; with {self.num_patches} '
                f'patches it puts {self.num_a} in A, expected 1..'
                f'{self.num_patches - 1} so that A and B are both non-empty.')
        self.num_b = self.num_patches - self.num_a
        self.min_block_patches = int(min_block_patches)
        self.min_aspect = float(min_aspect)

    def masks(self, batch_size: int,
              generator: Optional[torch.Generator] = None) -> Tensor:
        """Membership of A. Bool tensor of shape (B, L), True = in A."""
        if self.mode == 'uniform':
            # one random permutation per row, all rows at once: (B, L)
            perm = torch.rand(batch_size, self.num_patches,
                              generator=generator).argsort(dim=1)
            m = torch.zeros(batch_size, self.num_patches, dtype=torch.bool)
            return m.scatter_(1, perm[:, :self.num_a], True)
        return torch.stack([
            block_mask(self.height, self.width, self.num_a, generator,
                       self.min_block_patches, self.min_aspect)
            for _ in range(batch_size)
        ])

    def __call__(self, batch_size: int,
                 generator: Optional[torch.Generator] = None,
                 device: Optional[Union[str, torch.device]] = None
                 ) -> Tuple[Tensor, Tensor]:
        """Sorted patch indices of A (B, L_A) and of B (B, L_B), int64."""
        in_a = self.masks(batch_size, generator)  # (B, L)
        # stable sort puts A's indices first, each part in raster order
        order = torch.sort((~in_a).to(torch.uint8), dim=1, stable=True)[1]
        ids_a, ids_b = order[:, :self.num_a], order[:, self.num_a:]
        if device is not None:
            ids_a, ids_b = ids_a.to(device), ids_b.to(device)
        return ids_a, ids_b

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(grid=({self.height}, {self.width}), '
                f'mode={self.mode!r}, ratio={self.ratio}, num_a={self.num_a}'
                f', num_b={self.num_b})')


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Images (B, C, H, W) to raster-order patches (B, L, C * p * p).

    Raises:
        ValueError: If H or W is not divisible by ``patch_size``.
    """
    b, c, h, w = images.shape
    p = int(patch_size)
    if h % p or w % p:
        raise ValueError(f'Image size {h}x{w} is not divisible by the patch '
                         f'size {p}; resize or crop to a multiple of {p}.')
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p),
                                               c * p * p)


class SplitMaskTokenizer(nn.Module):
    """Training-free patch tokeniser (no DALL-E needed).

    Each patch is normalised to zero mean and unit variance (flat patches
    become the zero vector) and mapped to the index of its nearest codebook
    entry by cosine similarity. Three codebooks, as compared in the paper:

    - ``'random_projection'`` (default): a fixed Gaussian projection
      ``R`` of shape (C * p * p, proj_dim) and ``vocab_size`` random unit
      codes in ``proj_dim`` dimensions; token = argmax_v <normalise(x R),
      c_v>, a locality-sensitive hash of the normalised patch. Built at
      construction from ``seed``; needs no data.
    - ``'random_patches'``: the codebook is ``vocab_size`` normalised
      patches of the data, drawn with ``seed`` (:meth:`fit`).
    - ``'kmeans'``: spherical k-means (``iters`` Lloyd steps) on sampled
      normalised patches, started from random patches (:meth:`fit`).

    The codebook, projection and a ``fitted`` flag are persistent buffers, so
    they are saved in and restored from checkpoints. A tokeniser of a
    data-dependent mode refuses to run until fitted (or loaded).

    Args:
        patch_size (int): p, the side of a patch. Defaults to 16.
        in_channels (int): C. Defaults to 3.
        vocab_size (int): V. Defaults to 8192.
        mode (str): ``'random_projection'``, ``'random_patches'`` or
            ``'kmeans'``. Defaults to ``'random_projection'``.
        proj_dim (int): Projection size of ``'random_projection'``.
            Defaults to 32.
        seed (int): Seed of the projection, the codes and :meth:`fit`.
            Defaults to 0.
        eps (float): Added to the patch variance. Defaults to 1e-6.
        chunk_size (int): Patches compared with the codebook at once.
            Defaults to 8192.

    Examples:
        >>> tok = SplitMaskTokenizer(patch_size=4, in_channels=1,
        ...                          vocab_size=64, proj_dim=8)
        >>> tok(torch.randn(2, 1, 16, 16)).shape
        torch.Size([2, 16])
    """

    codebook: Tensor
    projection: Tensor
    fitted: Tensor

    def __init__(self, patch_size: int = 16, in_channels: int = 3,
                 vocab_size: int = 8192, mode: str = 'random_projection',
                 proj_dim: int = 32, seed: int = 0, eps: float = 1e-6,
                 chunk_size: int = 8192) -> None:
        super().__init__()
        if mode not in TOKENIZER_MODES:
            raise ValueError(f'Illegal tokenizer mode: {mode!r}; expected one '
                             f'of {TOKENIZER_MODES}.')
        if vocab_size < 2:
            raise ValueError(f'Illegal vocab_size: {vocab_size}; expected >= '
                             '2.')
        self.patch_size = int(patch_size)
        self.in_channels = int(in_channels)
        self.vocab_size = int(vocab_size)
        self.mode = mode
        self.seed = int(seed)
        self.eps = float(eps)
        self.chunk_size = int(chunk_size)
        self.patch_dim = self.in_channels * self.patch_size**2
        g = torch.Generator().manual_seed(self.seed)
        if mode == 'random_projection':
            if proj_dim < 1:
                raise ValueError(f'Illegal proj_dim: {proj_dim}; expected >= '
                                 '1.')
            projection = torch.randn(self.patch_dim, proj_dim, generator=g)
            codebook = F.normalize(
                torch.randn(self.vocab_size, proj_dim, generator=g), dim=1)
            fitted = True
        else:
            projection = torch.zeros(0)
            codebook = torch.zeros(self.vocab_size, self.patch_dim)
            fitted = False
        self.register_buffer('projection', projection, persistent=True)
        self.register_buffer('codebook', codebook, persistent=True)
        self.register_buffer('fitted', torch.tensor(fitted), persistent=True)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted.item())

    def normalised_patches(self, images: Tensor) -> Tensor:
        """Per-patch standardised patches. Tensor of shape (B, L, C*p*p)."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f'SplitMaskTokenizer expects images of shape (B, '
                f'{self.in_channels}, H, W), got {tuple(images.shape)}.')
        x = patchify(images.float(), self.patch_size)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt()

    def _features(self, x: Tensor) -> Tensor:
        """Normalised patches (N, P) in codebook space, unit norm (or 0)."""
        if self.mode == 'random_projection':
            x = x @ self.projection
        return F.normalize(x, dim=-1)

    def assign(self, x: Tensor) -> Tensor:
        """Nearest codes of normalised patches (N, P). Int64 tensor (N, )."""
        f = self._features(x)
        out = [(c @ self.codebook.t()).argmax(dim=1)
               for c in f.split(self.chunk_size)]
        return torch.cat(out) if out else f.new_zeros(0, dtype=torch.long)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Token ids of the patches of images (B, C, H, W). Shape (B, L).

        Raises:
            RuntimeError: If a data-dependent codebook was never fitted.
            ValueError: On a bad image shape.
        """
        if not self.is_fitted:
            raise RuntimeError(
                f'SplitMaskTokenizer(mode={self.mode!r}) has no codebook yet:'
                ' build one with tools/build_splitmask_tokenizer.py (and '
                'pass it as tokenizer_checkpoint) or add SplitMaskTokenizer'
                'Hook to custom_hooks, or use mode="random_projection".')
        x = self.normalised_patches(images)
        b, n, p = x.shape
        return self.assign(x.reshape(b * n, p)).reshape(b, n)

    @torch.no_grad()
    def fit(self, patches: Tensor, iters: int = 10) -> 'SplitMaskTokenizer':
        """Build a data codebook from normalised patches (N, C*p*p).

        ``'random_patches'`` keeps ``vocab_size`` patches drawn without
        replacement with ``seed``; ``'kmeans'`` starts from them and runs
        ``iters`` spherical k-means steps (an empty cluster keeps its centre).
        Deterministic for the same patches and seed.

        Raises:
            ValueError: In ``'random_projection'`` mode, on a wrong patch
                size, or with fewer than ``vocab_size`` patches.
        """
        if self.mode == 'random_projection':
            raise ValueError('SplitMaskTokenizer.fit: the random_projection '
                             'codebook needs no data (built from the seed).')
        if patches.dim() != 2 or patches.shape[1] != self.patch_dim:
            raise ValueError(
                f'SplitMaskTokenizer.fit expects patches of shape (N, '
                f'{self.patch_dim}), got {tuple(patches.shape)}.')
        n = patches.shape[0]
        if n < self.vocab_size:
            raise ValueError(
                f'SplitMaskTokenizer.fit got {n} patches for a vocabulary of '
                f'{self.vocab_size}; sample at least vocab_size patches.')
        x = F.normalize(patches.float().to(self.codebook.device), dim=1)
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(n, generator=g)[:self.vocab_size]
        centres = x[pick.to(x.device)].clone()  # (V, P)
        if self.mode == 'kmeans':
            for _ in range(int(iters)):
                self.codebook.copy_(centres)
                labels = self.assign(x)  # (N, )
                sums = torch.zeros_like(centres).index_add_(0, labels, x)
                counts = torch.bincount(labels, minlength=self.vocab_size)
                keep = counts > 0
                new = F.normalize(sums, dim=1)
                # all-zero (flat) clusters and empty ones keep their centre
                keep &= sums.norm(dim=1) > 0
                centres[keep] = new[keep]
        self.codebook.copy_(centres)
        self.fitted.fill_(True)
        return self

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, patch_size={self.patch_size}, '
                f'in_channels={self.in_channels}, vocab_size='
                f'{self.vocab_size}, seed={self.seed}')


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """Rows ``ids`` (B, K) of x (B, L, ...). Tensor of shape (B, K, ...)."""
    index = ids.reshape(*ids.shape, *([1] * (x.dim() - 2)))
    return torch.gather(x, 1, index.expand(-1, -1, *x.shape[2:]))


def _float32_linear(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)`` in float32 (float64 stays float64), also under autocast.

    The parameters of an ``nn.Linear`` are cast too (a no-op for the float32
    master weights of autocast), so a module converted to fp16 / bf16 as a
    whole also works; gradients reach them through the casts.
    """
    if isinstance(layer, nn.Linear):
        with float32_math(x, layer.weight, layer.bias) as (x, weight, bias):
            return F.linear(x, weight, bias)
    with float32_math(x) as (x, ):
        return layer(x)


def mim_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of token logits (B, K, V) against ids (B, K).

    The log-sum-exp is computed in float32, also under autocast.
    """
    with float32_math(logits) as (logits, ):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               targets.reshape(-1))


def info_nce(q: Tensor, k: Tensor, temperature: float,
             pos_offset: int = 0) -> Tensor:
    """InfoNCE of L2-normalised q (B, D) against k (M, D).

    The positive of ``q[i]`` is ``k[pos_offset + i]``; every other row of k
    (the other images of the global batch) is a negative. Logits, the
    division by the temperature and the cross-entropy are computed in
    float32 (float64 stays float64), also under fp16 / bf16 autocast.

    Raises:
        ValueError: On an empty batch (q or k without rows).
    """
    check_batch('InfoNCE queries q', q)
    check_batch('InfoNCE keys k', k)
    with float32_math(q, k) as (q, k):
        # logits: (B, M)
        logits = q @ k.t() / temperature
        labels = torch.arange(q.shape[0], device=q.device) + pos_offset
        return F.cross_entropy(logits, labels)


class SplitMaskLoss(nn.Module):
    """SplitMask objective: two-way token inpainting + InfoNCE of branches.

    With decoder outputs ``dec_a`` (the branch that saw A) and ``dec_b`` (the
    branch that saw B), both of shape (B, L, C) over all L positions:

    - MIM: ``predictor`` (a Linear C -> V) on ``dec_a`` at B's positions
      against B's tokens, and on ``dec_b`` at A's positions against A's
      tokens; ``mim`` = mean of the two directions' mean cross-entropies.
    - contrast: ``x_a = mean_L dec_a``, ``x_b = mean_L dec_b`` (all
      positions), ``projector`` (Identity, or a Linear C -> proj_dim), L2
      normalised; ``nce = (InfoNCE(z_a, Z_b) + InfoNCE(z_b, Z_a)) / 2`` at
      ``temperature``, with Z the (gathered) batch: the other images'
      descriptors of the other branch are the negatives.
    - ``loss = mim_weight * mim + contrastive_weight * nce``.

    Either branch may be None (BEiT-style single masked branch): then only
    that branch's MIM term is computed and ``nce`` is 0.

    The token logits (``predictor``), the descriptors (``projector`` and
    normalisation), the InfoNCE logits and both cross-entropies are computed
    in float32 even under fp16 / bf16 autocast (the decoder itself may run
    in half precision); gradients reach it through the casts.

    Args:
        embed_dims (int): C, the decoder width.
        vocab_size (int): V. Defaults to 8192.
        proj_dim (int, optional): Size of a Linear projection of the pooled
            descriptors before InfoNCE; None for none. Defaults to None.
        temperature (float): InfoNCE temperature. Defaults to 0.2.
        mim_weight (float): Weight of the MIM term. Defaults to 1.0.
        contrastive_weight (float): Weight of InfoNCE. Defaults to 1.0.
        check_interval (int): Calls between the checks that read values back
            from the device (NaN / Inf in ``dec_a`` and ``dec_b``); the first
            call is always checked, 0 never. Defaults to 100.

    Examples:
        >>> loss_fn = SplitMaskLoss(embed_dims=8, vocab_size=16)
        >>> ids = torch.arange(6).reshape(1, 6).repeat(2, 1)
        >>> out = loss_fn(torch.randn(2, 6, 8), torch.randn(2, 6, 8),
        ...               ids[:, :3], ids[:, 3:], torch.randint(16, (2, 6)))
        >>> sorted(out)
        ['loss', 'mim', 'mim_acc', 'nce']

    Raises:
        ValueError: On a NaN, infinite or non-positive temperature, negative
            loss weights, no branch, an empty batch or non-finite decoder
            outputs.
    """

    def __init__(self, embed_dims: int, vocab_size: int = 8192,
                 proj_dim: Optional[int] = None, temperature: float = 0.2,
                 mim_weight: float = 1.0,
                 contrastive_weight: float = 1.0,
                 check_interval: int = 100) -> None:
        super().__init__()
        temperature = check_temperature('temperature', temperature)
        if mim_weight < 0 or contrastive_weight < 0:
            raise ValueError(
                f'Illegal loss weights: mim_weight={mim_weight}, '
                f'contrastive_weight={contrastive_weight}; expected >= 0.')
        self.vocab_size = int(vocab_size)
        self.temperature = float(temperature)
        self.mim_weight = float(mim_weight)
        self.contrastive_weight = float(contrastive_weight)
        self.predictor = nn.Linear(embed_dims, vocab_size)
        self.projector: nn.Module = (nn.Linear(embed_dims, proj_dim)
                                     if proj_dim else nn.Identity())
        self._check = PeriodicCheck(check_interval)

    def descriptor(self, dec: Tensor) -> Tensor:
        """Average-pooled, projected, normalised descriptor (B, D).

        Float32 (float64 stays float64), also under autocast.
        """
        z = _float32_linear(self.projector, dec.mean(dim=1))
        with float32_math(z) as (z, ):
            return F.normalize(z, dim=1)

    def forward(self, dec_a: Optional[Tensor], dec_b: Optional[Tensor],
                ids_a: Tensor, ids_b: Tensor, tokens: Tensor,
                gather: Optional[GatherFn] = None) -> Dict[str, Tensor]:
        """Losses of one batch.

        Args:
            dec_a (Tensor, optional): Decoder output of the branch that saw
                A, shape (B, L, C); it predicts B's tokens.
            dec_b (Tensor, optional): Same for the branch that saw B.
            ids_a (Tensor): Patch indices of A, shape (B, L_A).
            ids_b (Tensor): Patch indices of B, shape (B, L_B).
            tokens (Tensor): Token ids of all patches, shape (B, L).
            gather (callable, optional): ``z (B, D) -> (Z (M, D), offset)``
                gathering descriptors across ranks (row ``offset + i`` of Z
                is this rank's ``z[i]``); None for the local batch only.

        Returns:
            dict[str, Tensor]: ``loss`` (weighted total, differentiable),
            and detached ``mim``, ``nce``, ``mim_acc`` (top-1 token accuracy).
        """
        if dec_a is None and dec_b is None:
            raise ValueError('SplitMaskLoss needs at least one branch.')
        branches = [(name, dec) for name, dec in (('dec_a', dec_a),
                                                  ('dec_b', dec_b))
                    if dec is not None]
        for name, dec in branches:
            check_batch(f'SplitMask decoder output {name}', dec, dim=3)
        if self._check.due():
            for name, dec in branches:
                check_finite(f'SplitMask decoder output {name}', dec)
        mims: List[Tensor] = []
        correct, total = 0.0, 0
        for dec, ids in ((dec_a, ids_b), (dec_b, ids_a)):
            if dec is None:
                continue
            # token logits in float32: (B, K, V)
            logits = _float32_linear(self.predictor, gather_tokens(dec, ids))
            target = torch.gather(tokens, 1, ids)  # (B, K)
            mims.append(mim_cross_entropy(logits, target))
            correct += (logits.argmax(-1) == target).sum().item()
            total += target.numel()
        mim = torch.stack(mims).mean()
        if dec_a is not None and dec_b is not None:
            z_a, z_b = self.descriptor(dec_a), self.descriptor(dec_b)
            if gather is None:
                za_all, zb_all, offset = z_a, z_b, 0
            else:
                za_all, offset = gather(z_a)  # (M, D)
                zb_all, _ = gather(z_b)  # (M, D)
            nce = 0.5 * (info_nce(z_a, zb_all, self.temperature, offset) +
                         info_nce(z_b, za_all, self.temperature, offset))
        else:
            nce = mim.new_zeros(())
        loss = self.mim_weight * mim + self.contrastive_weight * nce
        return dict(loss=loss, mim=mim.detach(), nce=nce.detach(),
                    mim_acc=mim.new_tensor(correct / max(total, 1)))


def splitmask_step(images: Tensor, encoder: Callable, decoder: Callable,
                   loss_fn: Callable, tokenizer: Callable,
                   mask_generator: SplitMaskGenerator, split: bool = True,
                   gather: Optional[GatherFn] = None,
                   generator: Optional[torch.Generator] = None
                   ) -> Dict[str, Tensor]:
    """One SplitMask forward: tokens, split, encode, decode, losses.

    The same function drives the registered ``SplitMask`` algorithm and
    hand-written loops (``examples/splitmask_plain.py``).

    Args:
        images (Tensor): Shape (B, C, H, W).
        encoder (callable): ``encoder(images, ids (B, K)) -> (B, 1 + K, C)``
            (class token first), seeing only the patches ``ids``.
        decoder (callable): ``decoder(x (B, 1 + K, C), ids) -> (B, L, C)``.
        loss_fn (callable): A :class:`SplitMaskLoss` (or same signature).
        tokenizer (callable): ``images -> token ids (B, L)``.
        mask_generator (SplitMaskGenerator): Gives (ids_a, ids_b).
        split (bool): True for SplitMask (both branches, MIM both ways +
            InfoNCE). False for the BEiT-style ablation: one branch sees B
            and inpaints A (MIM only). Defaults to True.
        gather (callable, optional): See :meth:`SplitMaskLoss.forward`.
        generator (torch.Generator, optional): Randomness of the masks.

    Returns:
        dict[str, Tensor]: What ``loss_fn`` returns.
    """
    with torch.no_grad():
        tokens = tokenizer(images)  # (B, L)
    if tokens.shape[1] != mask_generator.num_patches:
        raise ValueError(
            f'The tokenizer gives {tokens.shape[1]} patches per image but the '
            f'mask generator splits {mask_generator.num_patches} '
            f'({mask_generator.height}x{mask_generator.width}); image size '
            f'{tuple(images.shape[-2:])} does not match the configured grid.')
    ids_a, ids_b = mask_generator(images.shape[0], generator=generator,
                                  device=images.device)
    dec_b = decoder(encoder(images, ids_b), ids_b)  # sees B, predicts A
    dec_a = decoder(encoder(images, ids_a), ids_a) if split else None
    return loss_fn(dec_a, dec_b, ids_a, ids_b, tokens, gather=gather)
