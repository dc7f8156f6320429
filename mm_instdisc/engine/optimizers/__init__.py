from .adversarial_negatives_optim_wrapper import (
    AdversarialNegativesOptimWrapper,
    AdversarialNegativesOptimWrapperConstructor,
    adversarial_negatives_wrapper_class)
from .autocast_optim_wrapper import AutocastOptimWrapper

__all__ = [
    'AutocastOptimWrapper', 'AdversarialNegativesOptimWrapper',
    'AdversarialNegativesOptimWrapperConstructor',
    'adversarial_negatives_wrapper_class'
]
