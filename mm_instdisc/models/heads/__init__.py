from .npid_head import NPIDHead

__all__ = ['NPIDHead']
