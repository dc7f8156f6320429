from .compat import apply_compat_patches
from .dist import shutdown_distributed

__all__ = ['apply_compat_patches', 'shutdown_distributed']
