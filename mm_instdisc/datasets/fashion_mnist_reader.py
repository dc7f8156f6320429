"""Fashion-MNIST's IDX files as numpy arrays and as a torch-style Dataset.

Imports numpy only (PIL when an image is read; no OpenMMLab), and
``mm_instdisc.datasets`` imports it without OpenMMLab too: the plain-PyTorch
/ lightly door (``examples/``, the GPU sweeps of ``benchmarks/``) and the
registered :class:`~mm_instdisc.datasets.fashion_mnist.FashionMNISTIDX`
share this reader.
"""
import gzip
import os.path as osp
import zlib
from typing import Callable, Optional, Tuple

import numpy as np

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


def find_idx_file(root: str, stem: str) -> str:
    """``root/stem.gz`` or ``root/stem``; a missing file is an error naming
    the directory and how to prepare the data."""
    for name in (stem + '.gz', stem):
        path = osp.join(root, name)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'Fashion-MNIST file {stem}[.gz] not found in data_root={root!r}. ' +
        SETUP_HINT.format(root=root))


def load_fashion_mnist(root: str, split: str = 'train'
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N, )) of a split."""
    if split not in ('train', 'test'):
        raise ValueError(f"Illegal split: {split!r}; expected 'train' or "
                         "'test'.")
    prefix = 'train' if split == 'train' else 't10k'
    imgs = read_idx(find_idx_file(root, f'{prefix}-images-idx3-ubyte'))
    labels = read_idx(find_idx_file(root, f'{prefix}-labels-idx1-ubyte'))
    if len(imgs) != len(labels):
        raise ValueError(f'{root}: {len(imgs)} {split} images but '
                         f'{len(labels)} labels.')
    return imgs, labels.astype(np.int64)


class FashionMNIST:
    """Fashion-MNIST as a map-style torch dataset of ``(image, label)``,
    torchvision style: ``image`` is a PIL image (``'L'``, or ``'RGB'`` with
    ``rgb=True``) passed through ``transform``.

    Args:
        root (str): Directory with the IDX files.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        transform (callable, optional): Applied to the PIL image.
        limit (int, optional): Keep the first ``limit`` images.
        rgb (bool): Convert to 3 channels (ImageNet-style models and
            lightly's transforms). Defaults to False.
    """

    def __init__(self, root: str, split: str = 'train',
                 transform: Optional[Callable] = None,
                 limit: Optional[int] = None, rgb: bool = False) -> None:
        self.imgs, self.labels = load_fashion_mnist(root, split)
        if limit is not None:
            if limit <= 0:
                raise ValueError(f'Illegal limit: {limit}; expected > 0.')
            self.imgs, self.labels = self.imgs[:limit], self.labels[:limit]
        self.transform = transform
        self.rgb = rgb
        self.classes = FASHION_MNIST_CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image
        img = Image.fromarray(self.imgs[i])
        if self.rgb:
            img = img.convert('RGB')
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])
