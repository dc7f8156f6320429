from .batch_augment import BatchAugmentPreprocessor

__all__ = ['BatchAugmentPreprocessor']
