"""The classic pretext tasks, as baselines of instance discrimination.

Plain PyTorch (imports only torch): the label generation of each task, for a
whole batch on its device, and the classifier + cross-entropy they share.
``mm_instdisc.models`` wraps them as ``RotationPred``, ``RelativeLoc`` and
``JigsawPuzzle`` (with ``LossHead(loss=dict(type='PretextClsLoss'))``).

* Rotation prediction (Gidaris et al., ICLR 2018, "Unsupervised
  representation learning by predicting image rotations"):
  :func:`rotations` gives all four rotations of every image (0, 90, 180,
  270 degrees; the paper found feeding all four of an image in the same
  batch better than one at random); the network classifies 4 ways.
* Relative patch location (Doersch et al., ICCV 2015, "Unsupervised visual
  representation learning by context prediction"): :func:`grid_patches`
  cuts a 3x3 grid of patches with a gap between them and an independent
  random jitter of each patch (so that the network cannot match edges or
  continue lines across patch borders), :func:`neighbour_pairs` pairs the
  centre with each of its 8 neighbours, labelled 0-7 in raster order; the
  network classifies the neighbour's position from the pair's features.
* Jigsaw (Noroozi and Favaro, ECCV 2016, "Unsupervised learning of visual
  representations by solving jigsaw puzzles"): :func:`hamming_permutations`
  chooses the permutation set by maximal Hamming distance (their
  Algorithm 1), :func:`jigsaw_tiles` cuts a 3x3 grid of tiles (a random
  tile inside each cell, so the gap between tiles is random), shuffles them
  by a random permutation of the set and normalises each tile on its own
  (against shortcuts through low-level statistics); the label is the
  permutation's index.

Randomness: an optional ``torch.Generator``; without one the global RNG
(which ``RandomStateHook`` puts in checkpoints).
"""
import functools
import itertools
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import PeriodicCheck, check_batch, check_finite, float32_math

#: neighbour label -> (row, col) offset from the centre, raster order
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0),
              (1, 1))


def _images(x: Tensor) -> None:
    check_batch('images (B, C, H, W)', x, dim=4)


def rotations(x: Tensor) -> Tuple[Tensor, Tensor]:
    """All four rotations of every image.

    Returns ``(images, labels)``: images of shape (4B, C, H, W) with
    ``images[4 * i + r] = torch.rot90(x[i], r, dims=(1, 2))`` (r quarter
    turns counter-clockwise), labels (4B, ) with ``labels[4 * i + r] = r``.

    Raises:
        ValueError: On a batch that is not (B, C, H, W) or not square
            images (a quarter turn would change their shape).
    """
    _images(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f'Rotation prediction needs square images, got '
                         f'{tuple(x.shape[-2:])}; crop them first.')
    # (B, 4, C, H, W): the four rotations of an image side by side
    out = torch.stack([torch.rot90(x, r, dims=(2, 3)) for r in range(4)], 1)
    labels = torch.arange(4, device=x.device).repeat(x.shape[0])
    return out.flatten(0, 1), labels


def _crops(x: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """Crops ``x[b, :, top[b, k]:+size, left[b, k]:+size]``: (B, K, C, s, s)."""
    B, K = top.shape
    rows = top[..., None] + torch.arange(size, device=x.device)  # (B, K, s)
    cols = left[..., None] + torch.arange(size, device=x.device)
    b = torch.arange(B, device=x.device)[:, None, None, None]
    # x[b, :, r, c] with advanced indexing puts the channel last
    out = x.permute(0, 2, 3, 1)[b, rows[..., :, None], cols[..., None, :]]
    return out.permute(0, 1, 4, 2, 3)  # (B, K, C, s, s)


def _uniform_int(low: int, high: int, shape, generator, device) -> Tensor:
    """Integers uniform in [low, high] (inclusive)."""
    return torch.randint(low, high + 1, shape, generator=generator,
                         device='cpu').to(device)


def grid_patches(x: Tensor, patch: int, gap: int, jitter: int,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """The 3x3 grid of patches of relative patch location, raster order.

    The grid's cells are ``patch + gap`` apart; the whole grid lies at a
    random place in the image and every patch is moved by its own random
    offset in ``[-jitter, jitter]`` rows and columns. Returns a tensor of
    shape (B, 9, C, patch, patch); index 4 is the centre.

    Raises:
        ValueError: When the grid does not fit the image
            (``3 * patch + 2 * gap + 2 * jitter`` > H or W), or on a
            negative ``gap`` / ``jitter`` or ``patch`` < 1.
    """
    _images(x)
    if patch < 1 or gap < 0 or jitter < 0:
        raise ValueError(f'Illegal patch grid: patch={patch}, gap={gap}, '
                         f'jitter={jitter}; expected patch >= 1, gap and '
                         'jitter >= 0.')
    B, _, H, W = x.shape
    span = 3 * patch + 2 * gap + 2 * jitter
    if span > min(H, W):
        raise ValueError(
            f'The 3x3 patch grid needs {span} pixels (3 * patch {patch} + 2 '
            f'* gap {gap} + 2 * jitter {jitter}), the images are '
            f'{H}x{W}.')
    step = patch + gap
    grid = torch.arange(3, device=x.device) * step + jitter  # cell origins
    top0 = _uniform_int(0, H - span, (B, 1), generator, x.device)
    left0 = _uniform_int(0, W - span, (B, 1), generator, x.device)
    jit = _uniform_int(-jitter, jitter, (B, 9, 2), generator, x.device)
    top = top0 + grid.repeat_interleave(3)[None] + jit[..., 0]
    left = left0 + grid.repeat(3)[None] + jit[..., 1]
    return _crops(x, top, left, patch)


def neighbour_pairs(feats: Tensor) -> Tuple[Tensor, Tensor]:
    """Pairs of (centre, neighbour) features of :func:`grid_patches`.

    Args:
        feats (Tensor): Features of the 9 patches, shape (B, 9, D).

    Returns:
        tuple[Tensor, Tensor]: Pair features (8B, 2D), the centre's first
        then the neighbour's, and labels (8B, ): the neighbour's position
        0-7 (:data:`NEIGHBOURS`, raster order without the centre).
    """
    if feats.dim() != 3 or feats.shape[1] != 9:
        raise ValueError(f'Expected features of 9 patches (B, 9, D), got '
                         f'{tuple(feats.shape)}.')
    B, _, D = feats.shape
    others = torch.tensor([0, 1, 2, 3, 5, 6, 7, 8], device=feats.device)
    centre = feats[:, 4:5].expand(B, 8, D)
    pairs = torch.cat([centre, feats[:, others]], dim=2)  # (B, 8, 2D)
    labels = torch.arange(8, device=feats.device).repeat(B)
    return pairs.flatten(0, 1), labels


def hamming_permutations(num_permutations: int, num_tiles: int = 9,
                         seed: int = 0) -> Tensor:
    """A permutation set of maximal Hamming distance (Noroozi and Favaro,
    Algorithm 1, "maximal" variant).

    Start from a random permutation; then, until ``num_permutations`` are
    chosen, add the remaining permutation whose summed Hamming distance to
    the chosen ones is largest (the first such in lexicographic order on
    ties). Deterministic for a ``seed``.

    Returns:
        Tensor: int64 of shape (num_permutations, num_tiles); row p lists,
        for each position of the shuffled puzzle, the tile placed there.

    Raises:
        ValueError: When ``num_permutations`` exceeds ``num_tiles!`` or is
            below 1, or ``num_tiles`` is outside 2-10 (all ``num_tiles!``
            permutations are enumerated).
    """
    if not 2 <= num_tiles <= 10:
        raise ValueError(f'Illegal num_tiles: {num_tiles}; expected 2-10.')
    return _hamming_permutations(int(num_permutations), int(num_tiles),
                                 int(seed)).clone()


@functools.lru_cache(maxsize=8)
def _hamming_permutations(num_permutations: int, num_tiles: int,
                          seed: int) -> Tensor:
    every = torch.tensor(list(itertools.permutations(range(num_tiles))),
                         dtype=torch.uint8)  # (n!, T), lexicographic
    count = every.shape[0]
    if not 1 <= num_permutations <= count:
        raise ValueError(f'Illegal num_permutations: {num_permutations}; '
                         f'expected 1..{count} ({num_tiles}!).')
    columns = every.t().contiguous()  # (T, n!): one pass per tile position
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small passes: threads only add overhead
    try:
        return _maximal_set(every, columns, num_permutations, seed)
    finally:
        torch.set_num_threads(threads)


def _maximal_set(every: Tensor, columns: Tensor, num_permutations: int,
                 seed: int) -> Tensor:
    count, num_tiles = every.shape
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(count, (1, ), generator=g))]
    total = torch.zeros(count, dtype=torch.int32)  # summed distances
    taken = torch.zeros(count, dtype=torch.bool)
    taken[chosen[0]] = True
    while len(chosen) < num_permutations:
        last = every[chosen[-1]]
        for k in range(num_tiles):
            total.add_(columns[k].ne(int(last[k])))
        nxt = int(total.masked_fill(taken, -1).argmax())
        chosen.append(nxt)
        taken[nxt] = True
    return every[chosen].long()


def jigsaw_tiles(x: Tensor, permutations: Tensor, tile: int,
                 normalize: bool = True,
                 generator: Optional[torch.Generator] = None
                 ) -> Tuple[Tensor, Tensor]:
    """A shuffled 3x3 (or n x n) jigsaw puzzle of every image.

    The image is split into an n x n grid of cells (n^2 = the permutations'
    length, cells of ``H // n`` x ``W // n`` pixels); in each cell a
    ``tile`` x ``tile`` crop at a random place is taken, so neighbouring
    tiles are separated by a random gap. Each image draws a permutation
    index p; position k of its puzzle holds the tile of cell
    ``permutations[p, k]``. With ``normalize`` each tile is standardised on
    its own (zero mean, unit variance per channel).

    Returns:
        tuple[Tensor, Tensor]: Tiles (B, n^2, C, tile, tile) and the
        permutation indices (B, ).

    Raises:
        ValueError: When the tile is larger than a cell or the
            permutations are not (P, n^2) permutations of range(n^2).
    """
    _images(x)
    if permutations.dim() != 2:
        raise ValueError(f'Expected permutations of shape (P, T), got '
                         f'{tuple(permutations.shape)}.')
    T = permutations.shape[1]
    n = int(round(T**0.5))
    if n * n != T or not torch.equal(
            permutations.sort(1).values.cpu(),
            torch.arange(T).expand_as(permutations)):
        raise ValueError(f'Expected rows that permute range(n * n), got '
                         f'permutations of shape {tuple(permutations.shape)}.')
    B, _, H, W = x.shape
    cell_h, cell_w = H // n, W // n
    if not 1 <= tile <= min(cell_h, cell_w):
        raise ValueError(f'Illegal tile size {tile}: the {n}x{n} cells of '
                         f'{H}x{W} images are {cell_h}x{cell_w}.')
    cells = torch.arange(n, device=x.device)
    top = (cells * cell_h).repeat_interleave(n)[None] + _uniform_int(
        0, cell_h - tile, (B, T), generator, x.device)
    left = (cells * cell_w).repeat(n)[None] + _uniform_int(
        0, cell_w - tile, (B, T), generator, x.device)
    tiles = _crops(x, top, left, tile)  # (B, T, C, t, t), cell order
    labels = _uniform_int(0, permutations.shape[0] - 1, (B, ), generator,
                          x.device)
    order = permutations.to(x.device)[labels]  # (B, T)
    tiles = tiles[torch.arange(B, device=x.device)[:, None], order]
    if normalize:
        mean = tiles.mean(dim=(3, 4), keepdim=True)
        std = tiles.std(dim=(3, 4), keepdim=True)
        tiles = (tiles - mean) / (std + 1e-5)
    return tiles, labels


class PretextClsLoss(nn.Module):
    """A classifier on pretext features and its cross-entropy.

    ``Linear(in_channels, num_classes)``, or with ``hidden_channels`` an MLP
    ``Linear -> BatchNorm1d -> ReLU -> Linear`` (the fc layers that the
    relative-location and jigsaw papers put on the concatenated patch
    features). Logits and cross-entropy in float32, also under autocast.

    Args:
        in_channels (int): Feature size (for pairs / puzzles: of the
            concatenation).
        num_classes (int): 4 rotations, 8 positions, or the size of the
            jigsaw permutation set.
        hidden_channels (int, optional): Width of the hidden layer; None
            for a linear classifier. Defaults to None.
        check_interval (int): Calls between the checks that read values
            back from the device (NaN / Inf features). Defaults to 100.

    Examples:
        >>> loss_fn = PretextClsLoss(8, 4)
        >>> loss, logits = loss_fn(torch.randn(6, 8), torch.arange(6) % 4,
        ...                        return_logits=True)
        >>> logits.shape
        torch.Size([6, 4])
    """

    def __init__(self, in_channels: int, num_classes: int,
                 hidden_channels: Optional[int] = None,
                 check_interval: int = 100) -> None:
        super().__init__()
        for name, v in (('in_channels', in_channels),
                        ('num_classes', num_classes),
                        ('hidden_channels', hidden_channels or 1)):
            if int(v) < 1:
                raise ValueError(f'Illegal {name}: {v}; expected >= 1.')
        self.in_channels, self.num_classes = int(in_channels), int(
            num_classes)
        if hidden_channels:
            self.classifier = nn.Sequential(
                nn.Linear(in_channels, hidden_channels),
                nn.BatchNorm1d(hidden_channels), nn.ReLU(inplace=True),
                nn.Linear(hidden_channels, num_classes))
        else:
            self.classifier = nn.Linear(in_channels, num_classes)
        self._check = PeriodicCheck(check_interval)

    def forward(self, feats: Tensor, labels: Tensor,
                return_logits: bool = False):
        """Mean cross-entropy of ``feats`` (N, in_channels) against
        ``labels`` (N, ) (and the (N, num_classes) logits)."""
        check_batch('Pretext features', feats)
        if feats.shape[1] != self.in_channels:
            raise ValueError(f'Expected features of size {self.in_channels}, '
                             f'got {tuple(feats.shape)}.')
        if labels.shape != (feats.shape[0], ):
            raise ValueError(f'Expected one label per feature, got labels of '
                             f'shape {tuple(labels.shape)}.')
        if self._check.due():
            check_finite('Pretext features', feats)
        with float32_math(feats) as (feats, ):
            logits = self.classifier(feats)
            loss = F.cross_entropy(logits, labels)
        return (loss, logits) if return_logits else loss

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_classes={self.num_classes}')
