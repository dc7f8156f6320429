"""The losses of :mod:`mm_instdisc.modules` in mmpretrain's ``MODELS``
registry, so that a head builds them from a config
(``LossHead(loss=dict(type='NPIDLoss', ...))``). The classes stay plain
PyTorch modules (``mm_instdisc.modules`` imports only torch); registering
them here keeps one implementation."""
from mmpretrain.registry import MODELS

from mm_instdisc.modules import (AdCoLoss, ExemplarLoss, NPIDLoss,
                                 ParametricInstanceLoss, SplitMaskLoss)
from mm_instdisc.modules.colorization import BinnedPixelLoss
from mm_instdisc.modules.pretext import PretextClsLoss

for _loss in (NPIDLoss, AdCoLoss, ExemplarLoss, ParametricInstanceLoss,
              SplitMaskLoss, PretextClsLoss, BinnedPixelLoss):
    MODELS.register_module(module=_loss)

__all__ = ['NPIDLoss', 'AdCoLoss', 'ExemplarLoss', 'ParametricInstanceLoss',
           'SplitMaskLoss', 'PretextClsLoss', 'BinnedPixelLoss']
