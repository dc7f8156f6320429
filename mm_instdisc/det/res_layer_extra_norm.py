from mmcv.cnn import build_norm_layer
from mmdet.models.backbones import ResNet
from mmdet.models.roi_heads.shared_heads import ResLayer
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module(force=True)
class ResLayerExtraNorm(ResLayer):
    """The C4 detector's shared RoI head (res5), followed by a norm layer.

    In a Mask R-CNN R50-C4 the backbone stops after res4 and res5 runs on each
    RoI (mmdet's ``ResLayer``). A ResNet pretrained without a final norm
    feeds the box and mask heads unnormalised res5 features; the transfer
    protocol of the self-supervised benchmarks (MoCo's detectron2 configs,
    mmselfsup / mmpretrain) adds one norm layer, of ``norm_cfg`` (SyncBN in
    the benchmarks), after res5. Its parameters are not in the pretrained
    checkpoint and start at weight 1, bias 0.

    mmpretrain registers a class of the same name into mmdet's registry when
    ``mmpretrain.models`` is imported; ``mm_instdisc.det`` imports that first
    and then replaces it with this one, so the order of imports in a config
    does not matter.

    Args:
        *args: Passed to mmdet's ``ResLayer`` (``depth``, ``stage``, ...).
        **kwargs: Passed to mmdet's ``ResLayer``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        depth = kwargs['depth'] if 'depth' in kwargs else args[0]
        block, _ = ResNet.arch_settings[depth]
        # ResNet doubles the width per stage from 64 at res2
        out_channels = 64 * 2**self.stage * block.expansion
        # named 'norm' like the C4 checkpoints of mmselfsup / mmpretrain
        self.add_module('norm', build_norm_layer(self.norm_cfg,
                                                 out_channels)[1])

    def forward(self, x: Tensor) -> Tensor:
        """Res5 then the norm layer: (R, C, H, W) -> (R, C', H/2, W/2)."""
        return self.norm(super().forward(x))
