from .adco import AdCo
from .exemplar import ExemplarMoCo
from .npid import NPID
from .parametric_instance import ParametricInstance
from .pretext import (Colorization, JigsawPuzzle, MaskedIntensityPred,
                      RelativeLoc, RotationPred)
from .splitmask import SplitMask, SplitMaskViT

__all__ = [
    'NPID', 'AdCo', 'ExemplarMoCo', 'SplitMask', 'SplitMaskViT',
    'ParametricInstance', 'RotationPred', 'RelativeLoc', 'JigsawPuzzle',
    'Colorization', 'MaskedIntensityPred'
]
