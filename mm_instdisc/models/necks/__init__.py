from .splitmask_neck import SplitMaskDecoder

__all__ = ['SplitMaskDecoder']
