"""A folder of images as a data set: every method pretrains on it.

Decoding, mode conversion and resizing live in :func:`read_image` (numpy /
PIL only); :class:`ImageFolderDataset` is mmpretrain's ``CustomDataset``
(any layout it reads: nested folders, an annotation file, one sub-folder
per class) plus a check of every file before training, the channel count
taken from the data, and decoded images kept in memory where they fit.
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')
RESIZE_MODES = ('crop', 'squash')
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


def _to_uint8(img):
    """A PIL image of any mode as an 8-bit 'L' or 'RGB' PIL image."""
    from PIL import Image
    mode = img.mode
    if mode in ('L', 'RGB'):
        return img
    if mode in ('1', 'LA', 'P;L'):
        return img.convert('L')
    if mode.startswith('I') or mode == 'F':
        a = np.asarray(img)
        if mode == 'F':  # floating point: stretch its own range
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
        elif a.max(initial=0) > 255:  # 16-bit (or wider): full range
            a = a.astype(np.float64) * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    return img.convert('RGB')  # RGBA (alpha dropped), P, CMYK, YCbCr, ...


def is_colour(mode: str) -> bool:
    """Whether a PIL mode holds colour (RGB, RGBA, palette, CMYK ...)."""
    return mode not in _GREY_MODES


def read_image(path: str, size: Optional[int] = None,
               channels: Optional[int] = None,
               resize: str = 'crop') -> Tuple[np.ndarray, bool]:
    """Decode an image file as uint8, optionally resized to size x size.

    Grey, RGB, RGBA (alpha dropped), palette and 16-bit files (scaled from
    0-65535 to 0-255) are read; the whole file is decoded, so a truncated
    file raises here, not during training.

    Args:
        path (str): Image file.
        size (int, optional): Output side. ``'crop'`` scales the shorter
            side to ``size`` and takes the centre square; ``'squash'``
            resizes to ``size`` x ``size``. None keeps the file's size.
        channels (int, optional): 1 (grey) or 3 (RGB); None keeps the
            file's own (1 for grey files, 3 otherwise).
        resize (str): ``'crop'`` or ``'squash'``. Defaults to ``'crop'``.

    Returns:
        tuple: the image, ndarray of shape (H, W) for one channel or
        (H, W, 3), uint8, RGB order; and whether the file was in colour.

    Raises:
        ValueError: Naming the file, if it is empty, not an image or
            truncated.
    """
    from PIL import Image, UnidentifiedImageError
    if resize not in RESIZE_MODES:
        raise ValueError(f'Illegal resize: {resize!r}; expected one of '
                         f'{RESIZE_MODES}.')
    if channels not in (None, 1, 3):
        raise ValueError(f'Illegal channels: {channels!r}; expected 1, 3 '
                         'or None (from the data).')
    if osp.getsize(path) == 0:
        raise ValueError(f'{path}: empty file (0 bytes), not an image.')
    try:
        with Image.open(path) as img:
            colour = is_colour(img.mode)
            if size and img.format == 'JPEG':
                # decode large JPEGs at a reduced scale (DCT scaling)
                img.draft('RGB' if colour else 'L', (2 * size, 2 * size))
            img.load()
            img = _to_uint8(img)
    except UnidentifiedImageError:
        raise ValueError(f'{path}: not an image file that PIL can identify '
                         f'({osp.getsize(path)} bytes).') from None
    except (OSError, SyntaxError) as e:  # truncated / corrupt data
        raise ValueError(f'{path}: unreadable image ({e}).') from None
    if channels == 1 and img.mode != 'L':
        img = img.convert('L')
    elif channels == 3 and img.mode != 'RGB':
        img = img.convert('RGB')
    if size:
        w, h = img.size
        if resize == 'squash':
            if (w, h) != (size, size):
                img = img.resize((size, size), Image.BILINEAR,
                                 reducing_gap=3.0)
        else:
            s = size / min(w, h)
            nw, nh = max(size, round(w * s)), max(size, round(h * s))
            if (nw, nh) != (w, h):
                img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)), colour


@DATASETS.register_module()
class ImageFolderDataset(CustomDataset):
    """Every image below a folder (or an annotation file), checked, as
    uint8 arrays of one size and channel count.

    What mmpretrain's ``CustomDataset`` reads, it reads: images anywhere
    below ``data_root`` / ``data_prefix`` (nested folders), or listed in
    ``ann_file``; with ``with_label=True`` one sub-folder per class
    (``gt_label``). Each sample also carries ``sample_idx`` (NPID's bank
    row). The pipeline gets ``img`` already decoded and resized, so
    ``[dict(type='PackInputs')]`` is a whole pipeline and
    ``BatchAugmentPreprocessor`` augments the batch on the model's device.

    Before training every file is decoded once (threads): an empty file, a
    file that is not an image or a truncated one stops the run with an
    error naming the files, or, with ``skip_bad=True``, the files are left
    out and listed once in the log with their count. The images are kept
    decoded in memory when they fit in ``cache_gb``; otherwise they are
    decoded again by the data loader's workers.

    Args:
        data_root (str): Root folder. Defaults to ''.
        img_size (int): Side of the square images. Defaults to 96.
        channels (int, optional): 1 or 3; None takes it from the data (3
            if any image is in colour, else 1). Defaults to None.
        resize (str): ``'crop'`` (shorter side to ``img_size``, centre
            square) or ``'squash'``. Defaults to ``'crop'``.
        with_label (bool): One sub-folder per class. Defaults to False.
        extensions (Sequence[str]): File endings read (any case).
            Defaults to jpg, jpeg, png, bmp, tif, tiff, webp, ppm, pgm.
        check (bool): Decode every file before training. Defaults to True.
        skip_bad (bool): Leave bad files out instead of stopping.
            Defaults to False.
        cache_gb (float): Keep the decoded images in memory up to this
            size (0: never). Defaults to 4.
        num_threads (int, optional): Decoding threads for the check.
            Defaults to the number of CPUs (at most 16).
        **kwargs: ``CustomDataset`` / ``BaseDataset`` arguments
            (``data_prefix``, ``ann_file``, ``pipeline``, ``indices`` ...).
    """

    def __init__(self, data_root: str = '', img_size: int = 96,
                 channels: Optional[int] = None, resize: str = 'crop',
                 with_label: bool = False,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 check: bool = True, skip_bad: bool = False,
                 cache_gb: float = 4.0, num_threads: Optional[int] = None,
                 **kwargs) -> None:
        if not isinstance(img_size, int) or img_size <= 0:
            raise ValueError(f'Illegal img_size: {img_size!r}; expected a '
                             'positive int.')
        if channels not in (None, 1, 3):
            raise ValueError(f'Illegal channels: {channels!r}; expected 1, '
                             '3 or None (from the data).')
        if resize not in RESIZE_MODES:
            raise ValueError(f'Illegal resize: {resize!r}; expected one of '
                             f'{RESIZE_MODES}.')
        root = osp.join(data_root, kwargs.get('data_prefix', '') or '')
        if not kwargs.get('ann_file') and not osp.isdir(root):
            raise FileNotFoundError(f'Image folder {root!r} does not exist '
                                    '(or is not a folder).')
        self.img_size, self.channels, self.resize = img_size, channels, resize
        self.check, self.skip_bad = bool(check), bool(skip_bad)
        self.cache_gb = float(cache_gb)
        self.num_threads = num_threads or min(16, os.cpu_count() or 1)
        self.bad_files: List[Tuple[str, str]] = []
        super().__init__(data_root=data_root, with_label=with_label,
                         extensions=extensions, **kwargs)

    def _find_samples(self):
        try:
            return super()._find_samples()
        except RuntimeError as e:
            if 'Found 0 files' not in str(e):
                raise
            raise ValueError(
                f'No images below {self.img_prefix!r}: expected files '
                f'ending in {", ".join(sorted(self.extensions))} (any case, '
                'nested folders allowed).') from None

    def _decode_all(self, paths: List[str], keep: bool):
        """Decode every file (threads): (arrays or None, colour flags,
        bad files)."""
        def one(path):
            try:
                img, colour = read_image(path, self.img_size, self.channels,
                                         self.resize)
                return (img if keep else None), colour, None
            except ValueError as e:
                return None, False, str(e)
            except FileNotFoundError as e:
                return None, False, f'{path}: {e}'

        with ThreadPoolExecutor(self.num_threads) as pool:
            return list(pool.map(one, paths, chunksize=16))

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        logger = MMLogger.get_current_instance()
        paths = [d['img_path'] for d in data_list]
        per_img = self.img_size ** 2 * (self.channels or 3)
        keep = (self.check and len(paths) * per_img <= self.cache_gb * 2**30)
        if not self.check:
            colours = [self._header_colour(p) for p in paths[:100]]
            # the first 100 headers decide the colour; every file is kept
            results = [(None, c, None) for c in colours] + [
                (None, False, None)] * (len(paths) - len(colours))
        else:
            logger.info(f'ImageFolderDataset: checking {len(paths)} images '
                        f'below {self.img_prefix} ({self.num_threads} '
                        'threads)')
            results = self._decode_all(paths, keep)
        bad = [(p, r[2]) for p, r in zip(paths, results) if r[2]]
        if bad:
            listed = '\n  '.join(reason for _, reason in bad[:10])
            more = f'\n  ... and {len(bad) - 10} more' if len(bad) > 10 else ''
            if not self.skip_bad:
                raise ValueError(
                    f'{len(bad)} of {len(paths)} files below '
                    f'{self.img_prefix!r} are not readable images:\n  '
                    f'{listed}{more}\nRemove or repair them, or set '
                    'skip_bad=True (train_dataloader.dataset.skip_bad=True) '
                    'to leave them out.')
            logger.warning(
                f'ImageFolderDataset: left out {len(bad)} of {len(paths)} '
                'files that are not readable images (skip_bad=True):\n  ' +
                '\n  '.join(reason for _, reason in bad))
            self.bad_files = bad
        good = [(d, r) for d, r in zip(data_list, results) if not r[2]]
        if not good:
            raise ValueError(f'None of the {len(paths)} files below '
                             f'{self.img_prefix!r} is a readable image.')
        if self.channels is None:
            self.channels = 3 if any(r[1] for _, r in good) else 1
        out = []
        for d, (img, _, _) in good:
            if img is not None:  # decoded with its file's own channels
                d['img'] = self._as_channels(img)
            out.append(d)
        self._metainfo['channels'] = self.channels
        if keep:
            logger.info(f'ImageFolderDataset: {len(out)} images of '
                        f'{self.img_size}x{self.img_size}x{self.channels} '
                        'kept decoded in memory')
        return out

    def _as_channels(self, img: np.ndarray) -> np.ndarray:
        if self.channels == 3 and img.ndim == 2:
            return np.ascontiguousarray(np.repeat(img[..., None], 3, 2))
        if self.channels == 1 and img.ndim == 3:  # ITU-R 601-2, as PIL 'L'
            w = np.array([299, 587, 114], dtype=np.uint32)
            return ((img.astype(np.uint32) @ w + 500) // 1000).astype(
                np.uint8)
        return img

    @staticmethod
    def _header_colour(path: str) -> bool:
        from PIL import Image
        try:
            with Image.open(path) as img:
                return is_colour(img.mode)
        except Exception:  # reported when the file is read in training
            return False

    def prepare_data(self, idx: int) -> Union[dict, None]:
        data_info = self.get_data_info(idx)
        if 'img' not in data_info:  # not cached: decode in the worker
            img, _ = read_image(data_info['img_path'], self.img_size,
                                self.channels, self.resize)
            data_info['img'] = self._as_channels(img)
        data_info.setdefault('img_shape', data_info['img'].shape[:2])
        data_info.setdefault('ori_shape', data_info['img'].shape[:2])
        return self.pipeline(data_info)
