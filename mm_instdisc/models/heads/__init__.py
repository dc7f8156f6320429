from .loss_head import LossHead

__all__ = ['LossHead']
