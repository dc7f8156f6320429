"""Write StarDist's 2D nuclei example as a small COCO instance data set.

The ``stardist`` wheel (PyPI, ``stardist==0.9.2``) ships a 512x512
fluorescence image of nuclei and its label image (``stardist/data/images/
img2d.tif``, ``mask2d.tif``: 0 background, one integer per nucleus). The
package itself is not needed (it pulls tensorflow): the wheel is a zip, read
with ``zipfile`` and PIL. Licence of the wheel and its data: BSD-3-Clause
(Uwe Schmidt, Martin Weigert; <https://github.com/stardist/stardist>).

    python tools/dataset_converters/prepare_stardist.py [--out data/stardist]
        [--wheel stardist-0.9.2-....whl | --image IMG --mask MASK]
        [--tile 128] [--stride 64] [--train-fraction 0.75] [--min-area 10]
        [--min-visible 0.2] [--force]

Without ``--wheel`` / ``--image``, ``pip download stardist==0.9.2 --no-deps``
fetches the wheel into a temporary folder. Layout written::

    OUT/train/images/tile_yYYY_xXXX.png   8-bit grey tiles
    OUT/test/images/tile_yYYY_xXXX.png
    OUT/train.json, OUT/test.json          COCO: boxes, RLE masks, areas
    OUT/README.md                          source, split and licence
    OUT/LICENSE.txt                        the wheel's licence (BSD-3)
    OUT/prepare_stardist.json              the settings (idempotence)

Tiles of ``--tile`` px are taken every ``--stride`` px. The split is by
position: tiles inside the left ``--train-fraction`` of the columns are
training tiles, tiles inside the rest test tiles; no tile straddles the
split, so no pixel is in both (a nucleus on the split line is cut in two,
one part on each side). A nucleus cut by a tile's border keeps the part
inside the tile (box and mask clipped); a part smaller than ``--min-area``
px or than ``--min-visible`` of the whole nucleus is dropped. One category,
``nucleus``; ``iscrowd`` 0; ``area`` the mask's pixel count; each annotation
also names its ``nucleus_id`` (the label in the label image) and each image
its ``tile`` ([x, y, w, h] in the source image).

Idempotent: a folder already written with the same settings and source is
left as it is; other settings are refused unless ``--force`` (which rewrites
the folder). For mm-instdisc-det-train:
``--train OUT/train.json --train-images OUT/train/images --val OUT/test.json
--val-images OUT/test/images --arch mask-rcnn``.
"""
import argparse
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

SOURCE = 'stardist==0.9.2'
WHEEL_IMAGE = 'stardist/data/images/img2d.tif'
WHEEL_MASK = 'stardist/data/images/mask2d.tif'
SPLITS = ('train', 'test')
CATEGORY = dict(id=1, name='nucleus', supercategory='cell')
SETTINGS = 'prepare_stardist.json'
README = """# StarDist 2D nuclei example (COCO instances)

Written by `tools/dataset_converters/prepare_stardist.py` from {source}: the
{height}x{width} image `img2d.tif` and its label image `mask2d.tif`
({num_nuclei} nuclei), cut into {tile}x{tile} px tiles every {stride} px.
Split by position: tiles in columns [0, {split_x}) are training tiles
({num_train} tiles, {ann_train} annotations), tiles in columns
[{split_x}, {width}) test tiles ({num_test} tiles, {ann_test} annotations);
no pixel is in both. Nuclei cut by a tile border are clipped; parts under
{min_area} px or under {min_visible} of their nucleus are dropped. One
category, `nucleus`; masks as RLE.

{licence}
"""
WHEEL_LICENCE = """**Licence: BSD-3-Clause** (the `stardist` package and its example data,
{copyright}; <https://github.com/stardist/stardist>); the licence, copied
from the wheel, is in `LICENSE.txt` next to this file: keep it with any copy
of these files.

Cite: Schmidt, U.; Weigert, M.; Broaddus, C.; Myers, G. Cell Detection with
Star-Convex Polygons. MICCAI 2018."""
OTHER_LICENCE = ('Licence: that of the input files; this script adds '
                 'none.')


def log(msg: str) -> None:
    print(f'prepare_stardist: {msg}', flush=True)


def download_wheel(dest: str) -> str:
    """``pip download stardist==0.9.2 --no-deps`` into ``dest``; the wheel's
    path.

    Raises:
        RuntimeError: pip failed (no network, no such version).
    """
    r = subprocess.run([sys.executable, '-m', 'pip', 'download', SOURCE,
                        '--no-deps', '--only-binary', ':all:', '-d', dest,
                        '-q'], capture_output=True, text=True)
    wheels = [f for f in os.listdir(dest) if f.endswith('.whl')]
    if r.returncode != 0 or not wheels:
        raise RuntimeError(f'pip download {SOURCE} failed (exit '
                           f'{r.returncode}): {r.stderr.strip()[-500:]}; '
                           'download the wheel elsewhere and pass --wheel.')
    return osp.join(dest, sorted(wheels)[0])


def read_tif(data: bytes, what: str) -> np.ndarray:
    """A single-page TIFF (or PNG) as a 2D array (PIL: 8 / 16-bit)."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.array(img)
    except Exception as e:  # noqa: B902 (PIL raises many kinds)
        raise ValueError(f'{what}: not a readable image ({e}).')
    if arr.ndim != 2:
        raise ValueError(f'{what}: expected a 2D single-channel image, got '
                         f'shape {arr.shape}.')
    return arr


def read_wheel(wheel: str) -> Tuple[np.ndarray, np.ndarray, Optional[str]]:
    """The image, label image and licence text (None if absent) of the
    stardist wheel (a zip)."""
    if not osp.isfile(wheel):
        raise FileNotFoundError(f'--wheel {wheel!r} does not exist.')
    try:
        with zipfile.ZipFile(wheel) as z:
            names = set(z.namelist())
            missing = [n for n in (WHEEL_IMAGE, WHEEL_MASK)
                       if n not in names]
            if missing:
                raise ValueError(f'{wheel}: no {missing} in it; expected '
                                 f'the {SOURCE} wheel.')
            lic = [n for n in names if n.endswith('LICENSE.txt')
                   and '.dist-info/' in n]
            text = z.read(sorted(lic)[0]).decode('utf-8') if lic else None
            return (read_tif(z.read(WHEEL_IMAGE), f'{wheel}:{WHEEL_IMAGE}'),
                    read_tif(z.read(WHEEL_MASK), f'{wheel}:{WHEEL_MASK}'),
                    text)
    except zipfile.BadZipFile:
        raise ValueError(f'{wheel}: not a wheel (zip) file.')


def to_uint8(img: np.ndarray) -> np.ndarray:
    """The image as uint8: as it is when in 0..255, else min-max scaled."""
    if img.dtype == np.uint8:
        return img
    lo, hi = float(img.min()), float(img.max())
    if lo >= 0 and hi <= 255:
        return img.astype(np.uint8)
    scaled = (img.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255
    return np.round(scaled).astype(np.uint8)


def tile_starts(length: int, tile: int, stride: int) -> List[int]:
    """Origins of ``tile``-px windows every ``stride`` px covering
    ``length`` px; the last one ends at ``length``."""
    if length < tile:
        return []
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def plan_tiles(height: int, width: int, tile: int, stride: int,
               train_fraction: float) -> Dict[str, List[Tuple[int, int]]]:
    """(y, x) origins of the training and test tiles.

    Training tiles lie in the columns [0, split_x), test tiles in
    [split_x, width), ``split_x = round(train_fraction * width)``.

    Raises:
        ValueError: A side of the split narrower than a tile.
    """
    split_x = int(round(train_fraction * width))
    if split_x < tile or width - split_x < tile or height < tile:
        raise ValueError(
            f'A {height}x{width} image split at column {split_x} '
            f'(--train-fraction {train_fraction}) leaves a side narrower '
            f'than a tile of {tile} px; use smaller --tile.')
    ys = tile_starts(height, tile, stride)
    train = [(y, x) for y in ys for x in tile_starts(split_x, tile, stride)]
    test = [(y, split_x + x) for y in ys
            for x in tile_starts(width - split_x, tile, stride)]
    return dict(train=train, test=test, split_x=split_x)


def tile_annotations(labels: np.ndarray, y: int, x: int, tile: int,
                     full_area: Dict[int, int], min_area: int,
                     min_visible: float) -> List[dict]:
    """COCO annotations (no ids) of the nuclei inside one tile.

    Args:
        labels (np.ndarray): The label image (H, W); 0 is background.
        y (int): Tile's top row.
        x (int): Tile's left column.
        tile (int): Tile side.
        full_area (dict[int, int]): Pixels of each nucleus in the image.
        min_area (int): Parts of fewer pixels are dropped.
        min_visible (float): Parts under this share of their nucleus are
            dropped.

    Returns:
        list[dict]: ``nucleus_id``, ``bbox`` ([x, y, w, h] of the clipped
        mask, pixel edges), ``segmentation`` (RLE, counts as str),
        ``area``, ``iscrowd`` 0, ``category_id`` 1; by nucleus id.
    """
    from pycocotools import mask as mask_utils
    window = labels[y:y + tile, x:x + tile]
    anns = []
    for nid in np.unique(window):
        if nid == 0:
            continue
        m = window == nid
        area = int(m.sum())
        if area < min_area or area < min_visible * full_area[int(nid)]:
            continue
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        bbox = [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1),
                int(rows[-1] - rows[0] + 1)]
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(nucleus_id=int(nid), category_id=CATEGORY['id'],
                         bbox=bbox, segmentation=rle, area=area, iscrowd=0))
    return anns


def _digest(image: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in (image, labels):
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _complete(out: str, settings: dict) -> bool:
    files = [osp.join(out, f'{s}.json') for s in SPLITS]
    if not all(osp.isfile(f) for f in files):
        return False
    for split, f in zip(SPLITS, files):
        with open(f) as fh:
            names = [i['file_name'] for i in json.load(fh)['images']]
        if not all(osp.isfile(osp.join(out, split, 'images', n))
                   for n in names):
            return False
    return True


def prepare(image: np.ndarray, labels: np.ndarray, out: str,
            tile: int = 128, stride: int = 64, train_fraction: float = 0.75,
            min_area: int = 10, min_visible: float = 0.2,
            force: bool = False, source: str = SOURCE,
            licence: Optional[str] = None) -> dict:
    """Tile ``image`` / ``labels`` into ``out`` as COCO train / test sets.

    Args:
        image (np.ndarray): The image (H, W), any integer or float type.
        labels (np.ndarray): Its label image (H, W): 0 background, one
            integer per nucleus.
        out (str): Output folder.
        tile (int): Tile side in px. Defaults to 128.
        stride (int): Step between tiles in px. Defaults to 64.
        train_fraction (float): Share of the columns for training, in
            (0, 1). Defaults to 0.75.
        min_area (int): Clipped parts under this many px are dropped.
            Defaults to 10.
        min_visible (float): Clipped parts under this share of their
            nucleus are dropped, in [0, 1]. Defaults to 0.2.
        force (bool): Rewrite a folder written with other settings.
            Defaults to False.
        source (str): Where the data came from (README). Defaults to
            ``stardist==0.9.2``.
        licence (str, optional): The licence text of the source (the
            wheel's), written to ``LICENSE.txt``; None: the README says the
            input files' licence applies.

    Returns:
        dict: The settings and the counts (``num_train``, ``num_test``
        tiles, ``ann_train``, ``ann_test``), with ``written`` False when
        the folder was already complete.

    Raises:
        ValueError: Bad settings, image and labels of different shapes,
            labels that are not non-negative integers, or a folder written
            with other settings (without ``force``).
    """
    image, labels = np.asarray(image), np.asarray(labels)
    if image.ndim != 2 or image.shape != labels.shape:
        raise ValueError(f'Image {image.shape} and labels {labels.shape}: '
                         'expected two 2D arrays of the same shape.')
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f'Labels of dtype {labels.dtype}, min '
                         f'{labels.min()}: expected non-negative integers '
                         '(0 background, one id per nucleus).')
    for name, v, ok in (
            ('tile', tile, isinstance(tile, int) and tile >= 8),
            ('stride', stride, isinstance(stride, int) and 1 <= stride
             <= tile),
            ('train_fraction', train_fraction, 0 < train_fraction < 1),
            ('min_area', min_area, min_area >= 1),
            ('min_visible', min_visible, 0 <= min_visible <= 1)):
        if not ok:
            raise ValueError(f'Illegal {name}: {v!r}; expected tile >= 8, '
                             '1 <= stride <= tile, 0 < train_fraction < 1, '
                             'min_area >= 1, 0 <= min_visible <= 1.')
    height, width = labels.shape
    plan = plan_tiles(height, width, tile, stride, train_fraction)
    settings = dict(digest=_digest(image, labels), tile=tile, stride=stride, train_fraction=train_fraction,
                    min_area=min_area, min_visible=min_visible,
                    split_x=plan['split_x'])
    meta = osp.join(out, SETTINGS)
    if osp.isfile(meta):
        with open(meta) as f:
            old = json.load(f)
        same = {k: old.get(k) for k in settings} == settings
        if same and _complete(out, settings):
            log(f'{out} already written with these settings; left as it is')
            return dict(old, written=False)
        if not same and not force:
            raise ValueError(
                f'{out} was written with other settings ({old}); pass '
                '--force to rewrite it, or another --out.')
    elif not force and any(osp.exists(osp.join(out, s)) for s in SPLITS):
        raise ValueError(
            f'{out} has train/ or test/ folders not written by this script '
            f'(no {SETTINGS}); pass another --out, or --force to replace '
            'them.')
    for split in SPLITS:  # a fresh folder: no tiles of other settings
        shutil.rmtree(osp.join(out, split), ignore_errors=True)
        os.makedirs(osp.join(out, split, 'images'))
    from PIL import Image
    img8 = to_uint8(image)
    ids, counts = np.unique(labels, return_counts=True)
    full_area = {int(i): int(n) for i, n in zip(ids, counts) if i != 0}
    summary = dict(settings, source=source, num_nuclei=len(full_area),
                   height=height, width=width)
    for split in SPLITS:
        images, anns = [], []
        for y, x in plan[split]:
            name = f'tile_y{y:04d}_x{x:04d}.png'
            Image.fromarray(img8[y:y + tile, x:x + tile]).save(
                osp.join(out, split, 'images', name))
            images.append(dict(id=len(images) + 1, file_name=name,
                               width=tile, height=tile,
                               tile=[x, y, tile, tile]))
            for a in tile_annotations(labels, y, x, tile, full_area,
                                      min_area, min_visible):
                anns.append(dict(a, id=len(anns) + 1,
                                 image_id=images[-1]['id']))
        coco = dict(info=dict(description=f'StarDist 2D example ({source})'
                              f', {split} tiles', version='1.0'),
                    licenses=[dict(id=1, name='BSD-3-Clause',
                                   url='https://github.com/stardist/'
                                   'stardist/blob/main/LICENSE.txt')],
                    images=images, annotations=anns,
                    categories=[dict(CATEGORY)])
        with open(osp.join(out, f'{split}.json'), 'w') as f:
            json.dump(coco, f)
        summary[f'num_{split}'] = len(images)
        summary[f'ann_{split}'] = len(anns)
    if licence:
        with open(osp.join(out, 'LICENSE.txt'), 'w') as f:
            f.write(licence)
        notice = next((ln.strip() for ln in licence.splitlines()
                       if ln.strip().startswith('Copyright')),
                      'Uwe Schmidt, Martin Weigert')
        text = WHEEL_LICENCE.format(copyright=notice)
    else:
        text = OTHER_LICENCE
    with open(osp.join(out, 'README.md'), 'w') as f:
        f.write(README.format(licence=text, **summary))
    with open(meta, 'w') as f:
        json.dump(summary, f, indent=1)
    log(f'{out}: {summary["num_train"]} train tiles '
        f'({summary["ann_train"]} nuclei), {summary["num_test"]} test tiles '
        f'({summary["ann_test"]} nuclei)')
    return dict(summary, written=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='StarDist 2D nuclei example -> COCO train / test tiles')
    p.add_argument('--out', default='data/stardist')
    src = p.add_mutually_exclusive_group()
    src.add_argument('--wheel', help=f'a downloaded {SOURCE} wheel '
                     '(default: pip download it)')
    src.add_argument('--image', help='an image file instead of the wheel '
                     '(needs --mask)')
    p.add_argument('--mask', help='its label image (0 background, one id '
                   'per object)')
    p.add_argument('--tile', type=int, default=128)
    p.add_argument('--stride', type=int, default=64)
    p.add_argument('--train-fraction', type=float, default=0.75,
                   help='share of the columns (left) for training')
    p.add_argument('--min-area', type=int, default=10)
    p.add_argument('--min-visible', type=float, default=0.2)
    p.add_argument('--force', action='store_true',
                   help='rewrite a folder written with other settings')
    args = p.parse_args(argv)
    if (args.image is None) != (args.mask is None):
        p.error('--image and --mask go together')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.image is not None:
        arrays = []
        for path in (args.image, args.mask):
            if not osp.isfile(path):
                raise SystemExit(f'prepare_stardist: {path!r} does not '
                                 'exist.')
            with open(path, 'rb') as f:
                arrays.append(read_tif(f.read(), path))
        (image, labels), licence = arrays, None
        source = f'{osp.basename(args.image)} / {osp.basename(args.mask)}'
    elif args.wheel is not None:
        image, labels, licence = read_wheel(args.wheel)
        source = f'{SOURCE} ({osp.basename(args.wheel)})'
    else:
        with tempfile.TemporaryDirectory() as tmp:
            log(f'pip download {SOURCE} --no-deps')
            wheel = download_wheel(tmp)
            image, labels, licence = read_wheel(wheel)
        source = f'{SOURCE} ({osp.basename(wheel)})'
    return prepare(image, labels, args.out, tile=args.tile,
                   stride=args.stride, train_fraction=args.train_fraction,
                   min_area=args.min_area, min_visible=args.min_visible,
                   force=args.force, source=source, licence=licence)


if __name__ == '__main__':
    main()
