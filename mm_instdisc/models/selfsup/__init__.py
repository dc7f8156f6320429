from .adco import AdCo
from .exemplar import ExemplarMoCo
from .npid import NPID

__all__ = ['NPID', 'AdCo']
__all__ += ['ExemplarMoCo']
from .splitmask import SplitMask, SplitMaskViT  # noqa: E402,F401

__all__ += ['SplitMask', 'SplitMaskViT']
from .parametric_instance import ParametricInstance  # noqa: E402,F401

__all__ += ['ParametricInstance']
