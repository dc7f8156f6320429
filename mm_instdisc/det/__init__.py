"""mm_instdisc's mmdet components (registered in ``mmdet.registry.MODELS``).

mmdet configs reach them with ``custom_imports = dict(imports=
['mm_instdisc.det'], allow_failed_imports=False)``; importing this package
also applies mm_instdisc's compatibility fixes for mmengine.
"""
from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

# the C4 Mask R-CNN's RoI head with its extra norm (ResLayerExtraNorm) is
# mmpretrain's, which registers it into mmdet's registry on import
from mmpretrain.models.utils.res_layer_extra_norm import \
    ResLayerExtraNorm  # noqa: E402

from .fmnist_coco_dataset import FMNISTCocoDataset  # noqa: E402
from .own_coco import CocoJsonDataset  # noqa: E402
from .pretrained_check_hook import PretrainedCheckHook  # noqa: E402

__all__ = [
    'ResLayerExtraNorm', 'FMNISTCocoDataset', 'PretrainedCheckHook',
    'CocoJsonDataset'
]
