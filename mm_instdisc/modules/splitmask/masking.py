"""SplitMask's split of the patches into two disjoint sets A and B."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

MASK_MODES = ('block', 'uniform')


def _grid(grid: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(grid, int):
        grid = (grid, grid)
    h, w = (int(v) for v in grid)
    if h < 1 or w < 1:
        raise ValueError(f'Illegal patch grid: {tuple(grid)}; expected two '
                         'positive sizes (patches per column, per row).')
    return h, w


def block_masks(batch_size: int, height: int, width: int, num_masked: int,
                generator: Optional[torch.Generator] = None,
                min_block_patches: int = 4, min_aspect: float = 0.3,
                max_attempts: int = 100) -> Tensor:
    """BEiT-style blockwise masks with exactly ``num_masked`` patches each,
    for a whole batch at once.

    Rectangular blocks (area drawn uniformly between ``min_block_patches``
    and the number still missing, log-uniform aspect ratio in
    ``[min_aspect, 1 / min_aspect]``, uniform position) are added until the
    target count is reached. The target is met exactly: a block that would
    overshoot keeps only as many of its new patches (in raster order) as are
    missing ("trim"), and if ``max_attempts`` blocks were not enough, random
    unmasked patches are added ("pad").

    The images of the batch advance together, one block attempt per loop
    step (tensor operations over the batch; the loop ends when every mask is
    complete, usually after a few attempts). Each image uses its own
    ``4 * max_attempts`` uniform numbers, drawn for the whole batch in one
    call, so image i's mask does not depend on the batch size.

    Args:
        batch_size (int): Number of masks.
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
        Tensor: Bool tensor of shape (batch_size, height * width), raster
        order, True = masked.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = block_masks(8, 14, 14, 98, generator=g)
        >>> m.shape, m.sum(1).tolist() == [98] * 8
        (torch.Size([8, 196]), True)
    """
    n = height * width
    if not 0 <= num_masked <= n:
        raise ValueError(f'Illegal num_masked: {num_masked}; expected 0..{n} '
                         f'for a {height}x{width} patch grid.')
    if not 0.0 < min_aspect <= 1.0:
        raise ValueError(f'Illegal min_aspect: {min_aspect}; expected (0, 1].')
    lo, hi = math.log(min_aspect), math.log(1.0 / min_aspect)
    draws = torch.rand(batch_size, max_attempts, 4,
                       generator=generator).double()
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    mask = torch.zeros(batch_size, n, dtype=torch.bool)
    count = torch.zeros(batch_size, dtype=torch.long)
    for t in range(max_attempts):
        missing = num_masked - count  # (B, )
        if not bool((missing > 0).any()):
            break
        u_area, u_aspect, u_top, u_left = draws[:, t].unbind(1)
        top_area = missing.clamp(min=min_block_patches).double()
        area = min_block_patches + u_area * (top_area - min_block_patches)
        aspect = torch.exp(lo + u_aspect * (hi - lo))
        bh = (area * aspect).sqrt().round().long().clamp(1, height)
        bw = (area / aspect).sqrt().round().long().clamp(1, width)
        top = torch.minimum((u_top * (height - bh + 1)).long(), height - bh)
        left = torch.minimum((u_left * (width - bw + 1)).long(), width - bw)
        block = ((rows >= top.view(-1, 1, 1))
                 & (rows < (top + bh).view(-1, 1, 1))
                 & (cols >= left.view(-1, 1, 1))
                 & (cols < (left + bw).view(-1, 1, 1))).view(batch_size, n)
        new = block & ~mask & (missing > 0).view(-1, 1)
        # trim an overshooting block: its first `missing` new patches
        take = new & (new.cumsum(1) <= missing.view(-1, 1))
        mask |= take
        count += take.sum(1)
    for i in (count < num_masked).nonzero().flatten().tolist():
        free = (~mask[i]).nonzero().flatten()  # pad with random free patches
        pick = torch.randperm(free.numel(), generator=generator)
        mask[i, free[pick[:num_masked - int(count[i])]]] = True
    return mask


def block_mask(height: int, width: int, num_masked: int,
               generator: Optional[torch.Generator] = None,
               min_block_patches: int = 4, min_aspect: float = 0.3,
               max_attempts: int = 100) -> Tensor:
    """One mask of :func:`block_masks`: bool (height * width, ).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = block_mask(14, 14, 98, generator=g)
        >>> int(m.sum())
        98
    """
    return block_masks(1, height, width, num_masked, generator,
                       min_block_patches, min_aspect, max_attempts)[0]


class SplitMaskGenerator:
    """Splits the patches of each image into disjoint subsets A and B.

    A and B always cover all patches (B is the complement of A), and their
    sizes are the same for every image of the batch, so the kept tokens of
    a batch can be stacked into (B, L_A, C) and (B, L_B, C):

    - ``mode='block'`` (paper default, ``ratio=0.5``): A is a BEiT-style
      blockwise mask of exactly ``round(ratio * L)`` patches
      (:func:`block_masks`, drawn for the whole batch at once), B its
      complement.
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
        return block_masks(batch_size, self.height, self.width, self.num_a,
                           generator, self.min_block_patches,
                           self.min_aspect)

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
