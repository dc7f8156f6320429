from .batch_augment import BatchAugmentPreprocessor
from .splitmask import SplitMaskPreprocessor

__all__ = ['BatchAugmentPreprocessor', 'SplitMaskPreprocessor']
