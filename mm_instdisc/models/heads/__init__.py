from .adco_head import AdCoHead
from .npid_head import NPIDHead

__all__ = ['NPIDHead', 'AdCoHead']
