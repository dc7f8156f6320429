"""SplitMask's training-free patch tokeniser (the MIM targets)."""
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TOKENIZER_MODES = ('random_projection', 'random_patches', 'kmeans')


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


@torch.no_grad()
def collect_patches(tokenizer: SplitMaskTokenizer,
                    data_preprocessor: Callable, loader: Iterable,
                    num_images: int, max_patches: int,
                    seed: int = 0) -> Tensor:
    """Normalised patches (N, C*p*p) of the first ``num_images`` images.

    Batches go through ``data_preprocessor(batch, False)`` (e.g. an
    OpenMMLab model's data preprocessor), which returns a dict with
    ``'inputs'`` (B, C, H, W) or a list of views (the first is used); at most
    ``max_patches`` patches are kept (a seeded random subset).
    """
    chunks, seen = [], 0
    for batch in loader:
        inputs = data_preprocessor(batch, False)['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        inputs = inputs[:num_images - seen]
        x = tokenizer.normalised_patches(inputs.cpu())  # (B, L, P)
        chunks.append(x.reshape(-1, x.shape[-1]))
        seen += inputs.shape[0]
        if seen >= num_images:
            break
    if not chunks:
        raise ValueError('collect_patches: the data loader gave no images.')
    patches = torch.cat(chunks)
    if patches.shape[0] > max_patches:
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(patches.shape[0], generator=g)[:max_patches]
        patches = patches[keep]
    return patches
