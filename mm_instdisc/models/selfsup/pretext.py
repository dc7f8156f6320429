"""The classic pretext tasks as mmpretrain algorithms (mmselfsup 0.x had
RotationPred and RelativeLoc; mmpretrain 1.x dropped them): thin wrappers of
:mod:`mm_instdisc.modules.pretext`, which has the maths and the papers."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from mm_instdisc.modules.pretext import (grid_patches, hamming_permutations,
                                         jigsaw_tiles, neighbour_pairs,
                                         rotations)

from .embed_predict import EmbedPredictMixin


class _PretextBase(EmbedPredictMixin, BaseSelfSupervisor):
    """backbone -> neck (pooling) -> ``head`` (a ``LossHead`` whose loss is
    a ``PretextClsLoss``); ``embed``/``predict`` read the pooled backbone
    features of the whole image (L2-normalised) for kNN."""

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
    return torch.nn.functional.interpolate(x, size=(size, size),
                                           mode='bilinear',
                                           align_corners=False)
