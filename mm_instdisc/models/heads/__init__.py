from .adco_head import AdCoHead
from .exemplar_head import ExemplarHead
from .npid_head import NPIDHead

__all__ = ['NPIDHead', 'AdCoHead']
__all__ += ['ExemplarHead']
from .splitmask_head import SplitMaskHead  # noqa: E402,F401

__all__ += ['SplitMaskHead']
from .parametric_instance_head import \
    ParametricInstanceHead  # noqa: E402,F401,E501

__all__ += ['ParametricInstanceHead']
