from .compat import apply_compat_patches
from .data_samples import sample_indices
from .dist import exit_distributed, shutdown_distributed

__all__ = ['apply_compat_patches', 'exit_distributed', 'sample_indices',
           'shutdown_distributed']
