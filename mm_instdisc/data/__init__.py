"""Data readers that need numpy/torch only (no OpenMMLab)."""
from .fashion_mnist import (FASHION_MNIST_CLASSES, FashionMNIST,
                            find_idx_file, load_fashion_mnist, read_idx)

__all__ = ['FASHION_MNIST_CLASSES', 'FashionMNIST', 'find_idx_file',
           'load_fashion_mnist', 'read_idx']
