from .npid import NPID

__all__ = ['NPID']
