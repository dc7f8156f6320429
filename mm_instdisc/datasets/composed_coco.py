"""A real-content instance-segmentation set: Fashion-MNIST items on canvases.

No COCO-format data can be had offline, so detection transfer on a CPU uses
images composed from Fashion-MNIST: several 28x28 items per canvas, each
resized by a random factor, pasted at a random place (some deliberately on
top of earlier ones). Every item's silhouette (pixels brighter than a
threshold, holes filled) is opaque: a later item hides what it covers of
earlier ones, whose masks lose those pixels. Boxes are taken from the
visible masks. The result is a COCO json (RLE masks, the 10 Fashion-MNIST
classes as categories 1..10) plus grayscale PNGs, read by mmdet's
``CocoDataset`` and ``CocoMetric``.

Items come from a range of the Fashion-MNIST *train* split, by default
indices 50000-59999: pretraining on the first 50000 (or 10000) train images
and kNN evaluation on t10k never see them. The range is cut in two, disjoint
item sets for the detection train and val images.
"""
import json
import os
import os.path as osp
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .fashion_mnist_reader import FASHION_MNIST_CLASSES

DEFAULT_ITEM_RANGE = (50000, 60000)


@dataclass
class ComposeSettings:
    """How canvases are composed.

    Args:
        canvas_size (int): Height and width of the square canvas in pixels.
            Defaults to 128.
        min_items (int): Fewest items tried per canvas. Defaults to 2.
        max_items (int): Most items tried per canvas. Defaults to 5.
        scale_range (tuple[float, float]): Range of the resize factor of the
            28x28 items (uniform). Defaults to (0.8, 2.5).
        threshold (int): A pixel belongs to the item's silhouette when its
            intensity (0-255) exceeds this; holes inside are filled.
            Defaults to 20.
        overlap_prob (float): Probability that an item is placed over an
            earlier one (its centre drawn inside that item's box) rather than
            anywhere. Defaults to 0.35.
        min_visible (float): An item is only placed where every earlier item
            keeps at least this fraction of its silhouette visible; after
            ``max_tries`` failed places it is left out. Defaults to 0.4.
        min_fragment (int): Connected pieces of a visible mask smaller than
            this many pixels (slivers left by occlusion) are removed from the
            mask; the largest piece is always kept. Defaults to 8.
        max_tries (int): Places tried per item. Defaults to 20.
    """

    canvas_size: int = 128
    min_items: int = 2
    max_items: int = 5
    scale_range: Tuple[float, float] = (0.8, 2.5)
    threshold: int = 20
    overlap_prob: float = 0.35
    min_visible: float = 0.4
    min_fragment: int = 8
    max_tries: int = 20

    def __post_init__(self) -> None:
        self.scale_range = tuple(float(s) for s in self.scale_range)
        if self.canvas_size < 28:
            raise ValueError(f'Illegal canvas_size: {self.canvas_size}; '
                             'expected at least 28 (one item at scale 1).')
        if not 1 <= self.min_items <= self.max_items:
            raise ValueError(f'Illegal min_items/max_items: {self.min_items}/'
                             f'{self.max_items}; expected 1 <= min <= max.')
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f'Illegal scale_range: {self.scale_range}; '
                             'expected 0 < low <= high.')
        if not 0 <= self.threshold < 255:
            raise ValueError(f'Illegal threshold: {self.threshold}; expected '
                             'an intensity in [0, 255).')
        if not 0 < self.min_visible <= 1:
            raise ValueError(f'Illegal min_visible: {self.min_visible}; '
                             'expected a fraction in (0, 1].')
        if not 0 <= self.overlap_prob <= 1:
            raise ValueError(f'Illegal overlap_prob: {self.overlap_prob}; '
                             'expected a probability in [0, 1].')


def item_silhouette(img: np.ndarray, threshold: int) -> np.ndarray:
    """Boolean mask of the pixels brighter than ``threshold``, holes filled.

    Args:
        img (np.ndarray): uint8 image of shape (H, W).
        threshold (int): Intensity threshold.

    Returns:
        np.ndarray: bool array of shape (H, W).
    """
    from scipy import ndimage
    return ndimage.binary_fill_holes(img > threshold)


def drop_fragments(mask: np.ndarray, min_fragment: int) -> np.ndarray:
    """Remove connected pieces smaller than ``min_fragment`` pixels.

    The largest piece is always kept, so a non-empty mask stays non-empty.
    """
    from scipy import ndimage
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]  # piece 1..n
    keep = sizes >= min_fragment
    keep[int(np.argmax(sizes))] = True
    return keep[labels - 1] & mask


def mask_to_bbox(mask: np.ndarray) -> List[int]:
    """COCO ``[x, y, w, h]`` of the pixels of a non-empty mask (inclusive)."""
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1),
            int(ys[-1] - ys[0] + 1)]


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image
    if img.shape == (size, size):
        return img.copy()
    return np.asarray(Image.fromarray(img).resize((size, size),
                                                  Image.BILINEAR))


def compose_canvas(items: Sequence[Tuple[np.ndarray, int, int]],
                   rng: np.random.Generator,
                   settings: ComposeSettings) -> Tuple[np.ndarray, List[dict]]:
    """Paste items onto one canvas, later items in front.

    Args:
        items (Sequence[tuple]): ``(image, label, source_index)`` per item;
            images are uint8 arrays of shape (28, 28), pasted in this order.
        rng (np.random.Generator): Source of the scales and places.
        settings (ComposeSettings): Composition parameters.

    Returns:
        tuple[np.ndarray, list[dict]]: The uint8 canvas of shape (S, S) and
        one dict per placed item, back to front, with ``mask`` (bool (S, S),
        visible pixels), ``bbox`` ([x, y, w, h] of the mask), ``label``,
        ``source_index`` and ``scale``.
    """
    S = settings.canvas_size
    canvas = np.zeros((S, S), np.uint8)
    owner = np.full((S, S), -1, np.int32)  # index of the item in front
    placed = []  # items on the canvas, back to front
    for img, label, src in items:
        scale = float(rng.uniform(*settings.scale_range))
        size = int(min(S, max(1, round(28 * scale))))
        patch = _resize(np.asarray(img, np.uint8), size)
        sil = item_silhouette(patch, settings.threshold)
        area = int(sil.sum())
        if area == 0:
            continue  # a blank item has nothing to detect
        for _ in range(settings.max_tries):
            if placed and rng.random() < settings.overlap_prob:
                # centre inside an earlier item's box: a real overlap
                px, py, pw, ph = placed[rng.integers(len(placed))]['box']
                cx = rng.uniform(px, px + pw)
                cy = rng.uniform(py, py + ph)
                x = int(np.clip(round(cx - size / 2), 0, S - size))
                y = int(np.clip(round(cy - size / 2), 0, S - size))
            else:
                x = int(rng.integers(0, S - size + 1))
                y = int(rng.integers(0, S - size + 1))
            covered = owner[y:y + size, x:x + size][sil]
            lost = np.bincount(covered[covered >= 0],
                               minlength=len(placed))
            if all(p['visible'] - lost[j] >= settings.min_visible * p['area']
                   for j, p in enumerate(placed)):
                break
        else:
            continue  # no place keeps the earlier items visible enough
        for j, p in enumerate(placed):
            p['visible'] -= int(lost[j])
        canvas[y:y + size, x:x + size][sil] = patch[sil]
        owner[y:y + size, x:x + size][sil] = len(placed)
        placed.append(dict(label=int(label), source_index=int(src),
                           scale=round(size / 28, 4), area=area,
                           visible=area, box=(x, y, size, size)))
    instances = []
    for j, p in enumerate(placed):
        mask = drop_fragments(owner == j, settings.min_fragment)
        instances.append(dict(mask=mask, bbox=mask_to_bbox(mask),
                              label=p['label'],
                              source_index=p['source_index'],
                              scale=p['scale']))
    return canvas, instances


def encode_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask, json-ready (counts as str)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']],
                counts=rle['counts'].decode('ascii'))


class _ItemStream:
    """Items of a split in a seeded random order, reshuffled when used up."""

    def __init__(self, indices: np.ndarray, rng: np.random.Generator) -> None:
        self.indices = indices
        self.rng = rng
        self.order = rng.permutation(indices)
        self.pos = 0
        self.passes = 1

    def take(self, n: int) -> List[int]:
        out = []
        for _ in range(n):
            if self.pos == len(self.order):
                self.order = self.rng.permutation(self.indices)
                self.pos = 0
                self.passes += 1
            out.append(int(self.order[self.pos]))
            self.pos += 1
        return out


def split_item_range(item_range: Tuple[int, int], num_available: int,
                     val_fraction: float) -> Dict[str, np.ndarray]:
    """Cut ``[start, end)`` into disjoint train / val item indices.

    The first ``1 - val_fraction`` of the range feed the train canvases, the
    rest the val canvases.

    Raises:
        ValueError: The range is empty, outside ``[0, num_available)``, or
            ``val_fraction`` leaves a split without items.
    """
    start, end = (int(v) for v in item_range)
    if not 0 <= start < end <= num_available:
        raise ValueError(f'Illegal item range: [{start}, {end}); expected '
                         f'0 <= start < end <= {num_available} (the number '
                         'of Fashion-MNIST train images).')
    n_val = int(round((end - start) * val_fraction))
    if not 0 < n_val < end - start:
        raise ValueError(f'Illegal val_fraction: {val_fraction}; it leaves '
                         f'{n_val} of {end - start} items for val, expected '
                         'at least one item for each split.')
    return dict(train=np.arange(start, end - n_val),
                val=np.arange(end - n_val, end))


def make_composed_coco(images: np.ndarray, labels: np.ndarray, out_dir: str,
                       split_items: Dict[str, np.ndarray],
                       num_images: Dict[str, int],
                       settings: Optional[ComposeSettings] = None,
                       seed: int = 0,
                       log: Optional[Callable[[str], None]] = None,
                       log_interval: int = 200) -> Dict[str, str]:
    """Write the composed set: ``{split}/*.png`` + ``annotations/*.json``.

    Args:
        images (np.ndarray): Fashion-MNIST train images, uint8 (N, 28, 28).
        labels (np.ndarray): Their labels (N, ).
        out_dir (str): Output folder.
        split_items (dict[str, np.ndarray]): Item indices (into ``images``)
            per split; keep them disjoint across splits.
        num_images (dict[str, int]): Canvases to write per split.
        settings (ComposeSettings, optional): Composition parameters; the
            defaults when None.
        seed (int): Seed; the same seed and inputs give identical files.
            Defaults to 0.
        log (Callable[[str], None], optional): Progress messages go here;
            stderr when None.
        log_interval (int): Report every this many canvases. Defaults to 200.

    Returns:
        dict[str, str]: The annotation file of each split.

    Raises:
        ValueError: Mismatched images/labels, a split without items or
            without an image count, or a negative image count.
    """
    settings = settings or ComposeSettings()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or labels.shape != (images.shape[0], ):
        raise ValueError(f'Expected images (N, 28, 28) and labels (N, ), got '
                         f'{images.shape} and {labels.shape}.')
    if set(split_items) != set(num_images):
        raise ValueError(f'Splits of split_items {sorted(split_items)} and '
                         f'num_images {sorted(num_images)} differ.')
    categories = [dict(id=i + 1, name=name, supercategory='fashion')
                  for i, name in enumerate(FASHION_MNIST_CLASSES)]
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    ann_files = {}
    for k, split in enumerate(sorted(split_items)):
        idx = np.asarray(split_items[split], dtype=np.int64)
        n_img = int(num_images[split])
        if n_img < 0:
            raise ValueError(f'Illegal number of {split} images: {n_img}; '
                             'expected >= 0.')
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(images):
            raise ValueError(f'Illegal {split} item indices: expected a '
                             f'non-empty set in [0, {len(images)}).')
        rng = np.random.default_rng([seed, k])
        stream = _ItemStream(idx, rng)
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        coco_images, annotations = [], []
        for i in range(n_img):
            n_items = int(rng.integers(settings.min_items,
                                       settings.max_items + 1))
            src = stream.take(n_items)
            canvas, instances = compose_canvas(
                [(images[s], labels[s], s) for s in src], rng, settings)
            file_name = f'{i:06d}.png'
            _save_png(canvas, osp.join(out_dir, split, file_name))
            coco_images.append(dict(id=i + 1, file_name=file_name,
                                    width=settings.canvas_size,
                                    height=settings.canvas_size))
            for inst in instances:
                x, y, w, h = inst['bbox']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1,
                    category_id=inst['label'] + 1,
                    segmentation=encode_rle(inst['mask']),
                    area=int(inst['mask'].sum()),
                    bbox=[x, y, w, h], iscrowd=0,
                    fmnist_index=inst['source_index'],
                    scale=inst['scale']))
            if (i + 1) % log_interval == 0 or i + 1 == n_img:
                log(f'[{split}] {i + 1}/{n_img} images, '
                    f'{len(annotations)} objects')
        if stream.passes > 1:
            log(f'[{split}] note: {n_img} images needed more than the '
                f'{len(idx)} {split} items, which were reused '
                f'({stream.passes} passes).')
        info = dict(
            description='Fashion-MNIST items composed onto canvases '
            '(mm_instdisc.datasets.composed_coco)',
            split=split, seed=seed,
            fmnist_train_indices=[int(idx.min()), int(idx.max()) + 1]
            if np.array_equal(idx, np.arange(idx.min(), idx.max() + 1))
            else sorted(int(v) for v in idx),
            settings=asdict(settings))
        ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(dict(info=info, licenses=[], images=coco_images,
                           annotations=annotations, categories=categories),
                      f)
        ann_files[split] = ann_file
    return ann_files


def _save_png(img: np.ndarray, path: str) -> None:
    from PIL import Image
    Image.fromarray(np.ascontiguousarray(img, np.uint8)).save(path, format='PNG')
