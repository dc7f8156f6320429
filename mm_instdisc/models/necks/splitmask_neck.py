from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils import (build_2d_sincos_position_embedding,
                                     build_norm_layer)
from mmpretrain.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class SplitMaskDecoder(BaseModule):
    """Light decoder of SplitMask: inpaints one branch to all positions.

    `SplitMask <https://arxiv.org/abs/2112.10740>`_. The encoder tokens of
    the patches a branch saw are put back at their positions, every other
    position gets a learned mask token, all positions get a fixed 2D sin-cos
    position embedding, the encoder's class token is prepended, and
    ``num_layers`` transformer layers at the encoder's width (no resizing
    projection) follow, then a LayerNorm. The output covers all L patch
    positions (the class token is dropped).

    Args:
        embed_dims (int): C, the encoder width. Defaults to 384.
        patch_resolution (int | tuple[int, int]): Patch grid of the encoder.
            Defaults to 14.
        num_layers (int): Transformer layers. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 6.
        mlp_ratio (float): FFN width / C. Defaults to 4.
        layer_scale_init_value (float): Layer scale. Defaults to 0.
        norm_cfg (dict, optional): Norm config; None for LN (eps 1e-6).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, embed_dims: int = 384,
                 patch_resolution: Union[int, Sequence[int]] = 14,
                 num_layers: int = 2, num_heads: int = 6,
                 mlp_ratio: float = 4., layer_scale_init_value: float = 0.,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(patch_resolution, int):
            patch_resolution = (patch_resolution, patch_resolution)
        self.patch_resolution = tuple(int(v) for v in patch_resolution)
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.embed_dims = int(embed_dims)
        if embed_dims % num_heads:
            raise ValueError(f'SplitMaskDecoder: embed_dims {embed_dims} is '
                             f'not divisible by num_heads {num_heads}.')
        norm_cfg = norm_cfg or dict(type='LN', eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.num_patches, embed_dims),
            requires_grad=False)
        self.layers = ModuleList([
            TransformerEncoderLayer(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=int(mlp_ratio * embed_dims),
                layer_scale_init_value=layer_scale_init_value,
                qkv_bias=True,
                norm_cfg=norm_cfg) for _ in range(num_layers)
        ])
        self.norm = build_norm_layer(norm_cfg, embed_dims)

    def init_weights(self) -> None:
        """Sin-cos positions, mask token and Linear layers (as MAE)."""
        super().init_weights()
        pos = build_2d_sincos_position_embedding(
            self.patch_resolution, self.embed_dims, cls_token=True)
        self.pos_embed.data.copy_(pos.float())
        trunc_normal_(self.mask_token, std=.02)

    def forward(self, x: Tensor, ids: Tensor) -> Tensor:
        """Inpaint a branch.

        Args:
            x (Tensor): Encoder output of shape (B, 1 + K, C), class token
                first, token k at patch ``ids[:, k]``.
            ids (Tensor): Patch indices of shape (B, K).

        Returns:
            Tensor: Shape (B, L, C), one row per patch position.
        """
        b, k1, c = x.shape
        if ids.shape != (b, k1 - 1):
            raise ValueError(
                f'SplitMaskDecoder: ids of shape {tuple(ids.shape)} do not '
                f'match encoder tokens of shape {tuple(x.shape)} (expected '
                f'({b}, {k1 - 1})).')
        full = self.mask_token.expand(b, self.num_patches, c)  # (B, L, C)
        full = full.scatter(1, ids.unsqueeze(-1).expand(-1, -1, c), x[:, 1:])
        full = full + self.pos_embed[:, 1:]
        h = torch.cat((x[:, :1] + self.pos_embed[:, :1], full), dim=1)
        for layer in self.layers:
            h = layer(h)
        return self.norm(h)[:, 1:]
