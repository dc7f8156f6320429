from .adversarial_optim_wrapper import (AdversarialAmpOptimWrapper,
                                        AdversarialAutocastOptimWrapper,
                                        AdversarialOptimWrapper)
from .cpu_amp_optim_wrapper import AutocastOptimWrapper

__all__ = [
    'AdversarialOptimWrapper', 'AdversarialAmpOptimWrapper',
    'AdversarialAutocastOptimWrapper', 'AutocastOptimWrapper'
]
