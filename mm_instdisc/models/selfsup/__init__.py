from .adco import AdCo
from .npid import NPID

__all__ = ['NPID', 'AdCo']
