from .cpu_amp_optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper']
