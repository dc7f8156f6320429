from typing import List

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

# the reader is shared with the OpenMMLab-free door
from .fashion_mnist_reader import (FASHION_MNIST_CLASSES, find_idx_file,
                                   read_idx)


@DATASETS.register_module()
class FashionMNISTIDX(BaseDataset):
    """Fashion-MNIST read from the standard IDX files of a data root.

    Expects ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` in
    ``data_root`` (as in the Debian package ``dataset-fashion-mnist`` or
    torchvision's download). Images are 28x28 uint8 arrays of shape
    (28, 28); ``PackInputs`` turns them into (1, 28, 28) tensors.
    Each sample carries ``sample_idx`` (set by mmengine) and ``gt_label``.

    Args:
        data_root (str): Directory with the IDX files.
        split (str): ``'train'`` (60k) or ``'test'`` (10k).
        pipeline (Sequence): Transforms. Defaults to ().
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (e.g. ``indices``
            to use a subset).
    """

    METAINFO = dict(classes=FASHION_MNIST_CLASSES)

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"Illegal split: {split!r}; expected 'train' or "
                             "'test'.")
        self.split = split
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def _find(self, stem: str) -> str:
        return find_idx_file(self.data_root, stem)

    def load_data_list(self) -> List[dict]:
        prefix = 'train' if self.split == 'train' else 't10k'
        imgs = read_idx(self._find(f'{prefix}-images-idx3-ubyte'))
        labels = read_idx(self._find(f'{prefix}-labels-idx1-ubyte'))
        if imgs.ndim != 3 or labels.shape != (imgs.shape[0], ):
            raise ValueError(f'Fashion-MNIST {self.split}: {imgs.shape} images '
                             f'and {labels.shape} labels do not match.')
        return [dict(img=np.ascontiguousarray(img), gt_label=int(lab))
                for img, lab in zip(imgs, labels)]
