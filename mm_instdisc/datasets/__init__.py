"""Datasets: Fashion-MNIST's reader (numpy only) and the OpenMMLab datasets
registered in mmpretrain's ``DATASETS``.

The reader (:mod:`~mm_instdisc.datasets.fashion_mnist_reader`: ``read_idx``,
``load_fashion_mnist``, the torch-style ``FashionMNIST``) needs no OpenMMLab:
where mmpretrain is not installed (``pip install mm_instdisc`` without
``[mm]``), importing this package gives the reader only. With mmpretrain
installed it also registers ``FashionMNISTIDX``, ``ClassBalancedSubset`` and
``ImageFolderDataset`` (and applies mm_instdisc's compatibility fixes for
mmengine), as configs' ``custom_imports=['mm_instdisc.datasets']`` expect.
"""
import importlib.util

from .fashion_mnist_reader import (FASHION_MNIST_CLASSES, FashionMNIST,
                                   find_idx_file, load_fashion_mnist, read_idx)

__all__ = ['FASHION_MNIST_CLASSES', 'FashionMNIST', 'find_idx_file',
           'load_fashion_mnist', 'read_idx']


def _openmmlab_installed() -> bool:
    try:
        return importlib.util.find_spec('mmpretrain') is not None
    except ImportError:  # an import hook that refuses it
        return False


if _openmmlab_installed():
    from mm_instdisc.utils import apply_compat_patches

    apply_compat_patches()

    from .class_balanced_subset import ClassBalancedSubset  # noqa: E402
    from .fashion_mnist import FashionMNISTIDX  # noqa: E402
    from .image_folder import ImageFolderDataset, read_image  # noqa: E402

    __all__ += ['ClassBalancedSubset', 'FashionMNISTIDX',
                'ImageFolderDataset', 'read_image']
