import gzip
import os.path as osp
import zlib
from typing import List

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                         'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
SETUP_HINT = ('Run `bash tools/setup.sh` (or `python tools/dataset_converters/'
              'prepare_fashion_mnist.py --out {root}`) to prepare it.')


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:
        # truncated downloads / bad bytes: gzip's own message names no file
        raise ValueError(
            f'{path}: cannot read it as a{" gzip-compressed" if path.endswith(".gz") else "n"} '
            f'IDX file ({type(e).__name__}: {e}); the file is truncated or '
            'corrupted. Delete it and prepare the data again (bash '
            'tools/setup.sh or tools/dataset_converters/'
            'prepare_fashion_mnist.py).') from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f'{path} is not an IDX file (bad magic number).')
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4',
              0x0D: '>f4', 0x0E: '>f8'}
    if data[2] not in dtypes:
        raise ValueError(f'{path}: unknown IDX data type 0x{data[2]:02x}.')
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
                  for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f'{path}: header says {shape}, found {arr.size} '
                         'values (truncated file?).')
    return arr.reshape(shape)


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
        for name in (stem + '.gz', stem):
            path = osp.join(self.data_root, name)
            if osp.isfile(path):
                return path
        raise FileNotFoundError(
            f'Fashion-MNIST file {stem}[.gz] not found in data_root='
            f'{self.data_root!r}. ' + SETUP_HINT.format(root=self.data_root))

    def load_data_list(self) -> List[dict]:
        prefix = 'train' if self.split == 'train' else 't10k'
        imgs = read_idx(self._find(f'{prefix}-images-idx3-ubyte'))
        labels = read_idx(self._find(f'{prefix}-labels-idx1-ubyte'))
        if imgs.ndim != 3 or labels.shape != (imgs.shape[0], ):
            raise ValueError(f'Fashion-MNIST {self.split}: {imgs.shape} images '
                             f'and {labels.shape} labels do not match.')
        return [dict(img=np.ascontiguousarray(img), gt_label=int(lab))
                for img, lab in zip(imgs, labels)]
