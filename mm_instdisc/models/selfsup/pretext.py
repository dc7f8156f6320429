"""The classic pretext tasks as mmpretrain algorithms (mmselfsup 0.x had
RotationPred and RelativeLoc; mmpretrain 1.x dropped them): thin wrappers of
:mod:`mm_instdisc.modules.pretext`, which has the maths and the papers."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from mm_instdisc.modules.colorization import srgb_to_lab
from mm_instdisc.modules.pretext import (grid_patches, hamming_permutations,
                                         jigsaw_tiles, neighbour_pairs,
                                         rotations)
from mm_instdisc.modules.splitmask import SplitMaskGenerator

from .embed_predict import EmbedPredictMixin


class _PretextBase(EmbedPredictMixin, BaseSelfSupervisor):
    """backbone -> neck (pooling) -> ``head`` (a ``LossHead`` whose loss is
    a ``PretextClsLoss``); ``embed``/``predict`` read the pooled backbone
    features of the whole image (L2-normalised) for kNN."""

    def check_classes(self, expected: int, what: str) -> None:
        """The head's classifier must have one output per pretext label."""
        got = getattr(self.head.loss_module, 'num_classes', None)
        if got != expected:
            raise ValueError(
                f'{type(self).__name__}: head.loss.num_classes is {got}, '
                f'expected {expected} ({what}).')

    def pooled(self, x: Tensor) -> Tensor:
        """Pooled backbone features (N, D) of a batch of images."""
        return self.neck(self.backbone(x))[0].flatten(1)

    def classify(self, feats: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        loss, logits = self.head.loss(feats, labels, return_logits=True)
        with torch.no_grad():
            acc = (logits.argmax(1) == labels).float().mean() * 100
        return dict(loss=loss, pretext_acc=acc)

    @staticmethod
    def first_view(inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        return inputs[0] if isinstance(inputs, (list, tuple)) else inputs


@MODELS.register_module()
class RotationPred(_PretextBase):
    """Rotation prediction (Gidaris et al., ICLR 2018): every image in all
    four rotations, a 4-way classifier on the pooled features.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Pooling neck, e.g. ``GlobalAveragePooling``.
        head (dict): ``LossHead`` with ``PretextClsLoss(in_channels=D,
            num_classes=4)``.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.check_classes(4, 'the four rotations')

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """``loss`` and the logged ``pretext_acc`` (% rotations right)."""
        x, labels = rotations(self.first_view(inputs))
        return self.classify(self.pooled(x), labels)


@MODELS.register_module()
class RelativeLoc(_PretextBase):
    """Relative patch location (Doersch et al., ICCV 2015): a 3x3 grid of
    jittered patches with gaps; the features of the centre and of each of
    its 8 neighbours, concatenated, are classified into the 8 positions.

    Args:
        backbone (dict): Backbone config (shared by all patches).
        neck (dict): Pooling neck.
        head (dict): ``LossHead`` with ``PretextClsLoss(in_channels=2D,
            num_classes=8, hidden_channels=...)``.
        patch (int): Patch size in pixels.
        gap (int): Pixels between neighbouring patches (before jitter).
        jitter (int): Largest random shift of a patch, in pixels.
        patch_resize (int, optional): Resize patches to this size before
            the backbone (e.g. for small images). Defaults to None.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, patch: int,
                 gap: int, jitter: int, patch_resize: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.patch, self.gap, self.jitter = int(patch), int(gap), int(jitter)
        self.patch_resize = patch_resize
        self.check_classes(8, "the centre's 8 neighbours")

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """``loss`` and the logged ``pretext_acc`` (% positions right)."""
        patches = grid_patches(self.first_view(inputs), self.patch, self.gap,
                               self.jitter)  # (B, 9, C, p, p)
        B = patches.shape[0]
        x = _resize(patches.flatten(0, 1), self.patch_resize)
        feats = self.pooled(x).view(B, 9, -1)
        return self.classify(*neighbour_pairs(feats))


@MODELS.register_module()
class JigsawPuzzle(_PretextBase):
    """Jigsaw puzzles (Noroozi and Favaro, ECCV 2016): 3x3 tiles shuffled by
    one of ``num_permutations`` permutations of maximal Hamming distance;
    the tiles' features, concatenated in puzzle order, are classified into
    the permutation's index.

    Args:
        backbone (dict): Backbone config (shared by all tiles).
        neck (dict): Pooling neck.
        head (dict): ``LossHead`` with ``PretextClsLoss(in_channels=9D,
            num_classes=num_permutations, hidden_channels=...)``.
        tile (int): Tile size in pixels (at most the cell, ``H // 3``).
        num_permutations (int): Size of the permutation set (the paper:
            1000 for 9 tiles). Defaults to 100.
        grid (int): Tiles per side. Defaults to 3.
        permutation_seed (int): Seed of the set's first permutation.
            Defaults to 0.
        tile_resize (int, optional): Resize tiles before the backbone.
            Defaults to None.
        normalize_tiles (bool): Standardise each tile on its own. Defaults
            to True.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, tile: int,
                 num_permutations: int = 100, grid: int = 3,
                 permutation_seed: int = 0,
                 tile_resize: Optional[int] = None,
                 normalize_tiles: bool = True, **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.tile, self.tile_resize = int(tile), tile_resize
        self.normalize_tiles = bool(normalize_tiles)
        # a buffer: the set travels with every checkpoint
        self.register_buffer(
            'permutations',
            hamming_permutations(num_permutations, grid * grid,
                                 permutation_seed))
        self.check_classes(int(num_permutations), 'num_permutations')

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """``loss`` and the logged ``pretext_acc`` (% puzzles solved)."""
        tiles, labels = jigsaw_tiles(self.first_view(inputs),
                                     self.permutations, self.tile,
                                     self.normalize_tiles)
        B, T = tiles.shape[:2]
        x = _resize(tiles.flatten(0, 1), self.tile_resize)
        feats = self.pooled(x).view(B, -1)  # (B, T * D), puzzle order
        return self.classify(feats, labels)


def _resize(x: Tensor, size: Optional[int]) -> Tensor:
    if size is None or x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode='bilinear',
                         align_corners=False)


class _DenseBase(_PretextBase):
    """Dense pretext tasks: the loss is :class:`BinnedPixelLoss` on the
    backbone's last feature map; the targets come from the un-normalised
    images (the data preprocessor's mean / std are undone)."""

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_stride: int = 4, **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        if int(target_stride) < 1:
            raise ValueError(f'Illegal target_stride: {target_stride}; '
                             'expected >= 1.')
        self.target_stride = int(target_stride)

    def pixels(self, x: Tensor) -> Tensor:
        """The images in [0, 1] (the preprocessor's normalisation undone;
        inputs in 0-255 before it)."""
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            x = x * pre.std + pre.mean
        return (x / 255.0).clamp(0, 1)

    def downsample(self, x: Tensor) -> Tensor:
        s = self.target_stride
        return F.avg_pool2d(x, s, s) if s > 1 else x


@MODELS.register_module()
class Colorization(_DenseBase):
    """Colorization (Zhang et al., ECCV 2016): the backbone sees the
    lightness L of CIE Lab (one channel, scaled to [-1, 1]) and classifies
    every pixel's ab into the quantised in-gamut bins (the head's
    ``BinnedPixelLoss(space='ab')``), at 1 / ``target_stride`` of the
    input resolution, with soft targets and class rebalancing.

    The data preprocessor must give RGB images (``to_rgb=True`` for
    mmpretrain's BGR loading). ``embed`` / ``predict`` read the pooled
    features of L, as the network was trained; a transfer config gives the
    backbone ``in_channels=1`` and the images' L (or grey images).

    Args:
        backbone (dict): Backbone with ``in_channels=1`` (a dilated ResNet
            keeps a finer feature map, as the paper's network).
        neck (dict): Pooling neck (kNN read-out only).
        head (dict): ``LossHead`` with ``BinnedPixelLoss(space='ab')``.
        target_stride (int): The ab target's downsampling. Defaults to 4
            (the paper predicts at a quarter of the resolution).
    """

    def lightness(self, x: Tensor) -> Tensor:
        lab = srgb_to_lab(self.pixels(x))
        return (lab[:, :1] - 50.0) / 50.0, lab[:, 1:]

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """``loss`` and the logged ``pretext_acc`` (% of pixels whose most
        likely bin is the one nearest their true ab)."""
        light, ab = self.lightness(self.first_view(inputs))
        target = self.downsample(ab)
        loss, acc = self.head.loss(self.backbone(light)[-1], target,
                                   return_acc=True)
        return dict(loss=loss, pretext_acc=acc)

    def embed(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        light, _ = self.lightness(self.first_view(inputs))
        return F.normalize(self.neck(self.backbone(light))[0], dim=1)


@MODELS.register_module()
class MaskedIntensityPred(_DenseBase):
    """Colorization's recipe for one-channel images: hide blocks of the
    image and classify the intensity of every hidden pixel into
    ``num_bins`` bins (the head's ``BinnedPixelLoss(space='intensity')``),
    with soft targets and class rebalancing, at 1 / ``target_stride`` of
    the resolution. There is no colour to predict from lightness in a grey
    image; withholding the intensity of regions and predicting it from the
    rest is the closest meaningful form (docs/pretext.md).

    The hidden cells of the target grid are BEiT-style blocks
    (:class:`SplitMaskGenerator`, ``mask_ratio`` of the cells, blocks of
    at least ``min_block_patches`` cells); hidden pixels are set to the
    normalised mean (0) in the input; only hidden cells count in the loss.

    Args:
        backbone (dict): Backbone config (one input channel).
        neck (dict): Pooling neck (kNN read-out of the whole image).
        head (dict): ``LossHead`` with ``BinnedPixelLoss(space=
            'intensity')``.
        target_stride (int): Cell size of the target grid. Defaults to 4.
        mask_ratio (float): Fraction of the cells hidden. Defaults to 0.5.
        min_block_patches (int): Smallest hidden block, in cells.
            Defaults to 4.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_stride: int = 4, mask_ratio: float = 0.5,
                 min_block_patches: int = 4, **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_stride=target_stride, **kwargs)
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(f'Illegal mask_ratio: {mask_ratio}; expected '
                             '(0, 1): some cells hidden, some seen.')
        self.mask_ratio = float(mask_ratio)
        self.min_block_patches = int(min_block_patches)

    def hidden_cells(self, batch: int, h: int, w: int,
                     device) -> Tensor:
        """Bool (B, h, w): the cells hidden from the network."""
        gen = SplitMaskGenerator((h, w), mode='block', ratio=self.mask_ratio,
                                 min_block_patches=self.min_block_patches)
        return gen.masks(batch).view(batch, h, w).to(device)

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """``loss`` and the logged ``pretext_acc`` (% of hidden cells whose
        most likely bin is the one nearest their intensity)."""
        x = self.first_view(inputs)
        target = self.downsample(self.pixels(x))  # (B, 1, h, w)
        B, _, h, w = target.shape
        hidden = self.hidden_cells(B, h, w, x.device)
        s = self.target_stride
        pix = hidden.repeat_interleave(s, 1).repeat_interleave(s, 2)
        pix = F.pad(pix, (0, x.shape[-1] - pix.shape[-1], 0,
                          x.shape[-2] - pix.shape[-2]))
        feats = self.backbone(x * (~pix)[:, None].to(x.dtype))[-1]
        loss, acc = self.head.loss(feats, target, hidden, return_acc=True)
        return dict(loss=loss, pretext_acc=acc)
