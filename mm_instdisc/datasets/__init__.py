from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

from .fashion_mnist import FashionMNISTIDX  # noqa: E402

__all__ = ['FashionMNISTIDX']
from .class_balanced_subset import ClassBalancedSubset  # noqa: F401,E402
from .image_folder import ImageFolderDataset, read_image  # noqa: F401,E402

__all__ += ['ImageFolderDataset', 'read_image']
