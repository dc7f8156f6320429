"""ViTDet-style simple feature pyramid for a plain ViT (SplitMask transfer).

Registered into mmdet's MODELS; mmdet configs import it with
``custom_imports = dict(imports=['mm_instdisc.models',
'mm_instdisc.det.splitmask_fpn'], allow_failed_imports=False)``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@MODELS.register_module()
class SplitMaskSimpleFPN(BaseModule):
    """Simple feature pyramid from the last map of a plain ViT.

    As in ViTDet (`Exploring Plain Vision Transformer Backbones for Object
    Detection <https://arxiv.org/abs/2203.16527>`_) and the SplitMask paper's
    Mask R-CNN transfer: from the stride-s map of the ViT (s = patch size,
    16), scale factor 4 uses two stride-2 transposed convolutions (with
    LayerNorm and GELU between), 2 one transposed convolution, 1 the map
    itself and 0.5 a 2x2 max-pooling; each level then gets a 1x1 and a 3x3
    convolution to ``out_channels``, each followed by a channel LayerNorm.
    Levels beyond ``len(scale_factors)`` (up to ``num_outs``) are stride-2
    subsamplings of the last one, as mmdet's FPN does for RPN's P6.

    Args:
        in_channels (int): Channels of the ViT map (its width).
        out_channels (int): Channels of every level. Defaults to 256.
        scale_factors (Sequence[float]): Scales relative to the ViT map;
            each of 4, 2, 1, 0.5. Defaults to (4, 2, 1, 0.5).
        num_outs (int): Levels returned. Defaults to 5.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'SplitMaskSimpleFPN: num_outs {num_outs} < the '
                             f'{len(scale_factors)} scale factors.')
        c = in_channels
        self.stages = nn.ModuleList()
        self.lateral = nn.ModuleList()
        self.output = nn.ModuleList()
        for s in scale_factors:
            if s == 4.0:
                stage = nn.Sequential(
                    nn.ConvTranspose2d(c, c // 2, 2, stride=2),
                    LayerNorm2d(c // 2), nn.GELU(),
                    nn.ConvTranspose2d(c // 2, c // 4, 2, stride=2))
                ch = c // 4
            elif s == 2.0:
                stage, ch = nn.ConvTranspose2d(c, c // 2, 2, stride=2), c // 2
            elif s == 1.0:
                stage, ch = nn.Identity(), c
            elif s == 0.5:
                stage, ch = nn.MaxPool2d(2, stride=2), c
            else:
                raise ValueError(f'SplitMaskSimpleFPN: unsupported scale '
                                 f'factor {s}; expected 4, 2, 1 or 0.5.')
            self.stages.append(stage)
            self.lateral.append(nn.Sequential(
                nn.Conv2d(ch, out_channels, 1, bias=False),
                LayerNorm2d(out_channels)))
            self.output.append(nn.Sequential(
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=False), LayerNorm2d(out_channels)))
        self.num_outs = int(num_outs)

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, ...]:
        """Pyramid of the last backbone map (B, C, H, W), finest first."""
        x = inputs if isinstance(inputs, Tensor) else inputs[-1]
        if x.dim() != 4:
            raise ValueError('SplitMaskSimpleFPN expects a (B, C, H, W) map; '
                             "set the ViT's out_type='featmap', got shape "
                             f'{tuple(x.shape)}.')
        outs = [out(lat(stage(x))) for stage, lat, out in zip(
            self.stages, self.lateral, self.output)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
