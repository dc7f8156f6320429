"""Write the composed Fashion-MNIST instance-segmentation set (COCO format).

    python tools/dataset_converters/make_fmnist_coco.py \
        [--fmnist-root data/fashion_mnist] [--out data/fmnist_coco] \
        [--num-train 2000] [--num-val 500] [--canvas 128] [--seed 0]

Composes Fashion-MNIST items (several per canvas, resized 0.8x-2.5x, later
items occluding earlier ones) into grayscale PNGs with COCO annotations:

    OUT/train/000000.png ...    OUT/annotations/instances_train.json
    OUT/val/000000.png ...      OUT/annotations/instances_val.json

Items are Fashion-MNIST *train* images [--item-start, --item-end), by default
50000-59999, so NPID pretraining on the first 50000 (or 10000) train images
and kNN evaluation on t10k never see them; the first 80% of the range feed
the train canvases, the last 20% (58000-59999) the val canvases. The same
arguments give identical files. See docs/transfer.md.
"""
import argparse
import os.path as osp
import sys
import time
from typing import Optional, Sequence

import mm_instdisc
from mm_instdisc.datasets import read_idx
from mm_instdisc.datasets.composed_coco import (DEFAULT_ITEM_RANGE,
                                                ComposeSettings,
                                                make_composed_coco,
                                                split_item_range)

#: the checkout of an editable install (its data/ holds the default paths)
ROOT = osp.dirname(osp.dirname(osp.abspath(mm_instdisc.__file__)))


def find_idx(root: str, stem: str) -> str:
    """The path of the IDX file ``stem`` (gzipped or not) in ``root``.

    Raises:
        SystemExit: Neither is there (says how to get them).
    """
    for name in (stem + '.gz', stem):
        if osp.isfile(osp.join(root, name)):
            return osp.join(root, name)
    raise SystemExit(f'error: {stem}[.gz] not found in --fmnist-root {root!r}; '
                     'run `bash tools/setup.sh` or tools/dataset_converters/'
                     'prepare_fashion_mnist.py first.')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None); the help
    text is this module's docstring."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--fmnist-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--out', default=osp.join(ROOT, 'data/fmnist_coco'))
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-val', type=int, default=500)
    p.add_argument('--item-start', type=int, default=DEFAULT_ITEM_RANGE[0])
    p.add_argument('--item-end', type=int, default=DEFAULT_ITEM_RANGE[1])
    p.add_argument('--val-fraction', type=float, default=0.2,
                   help='share of the item range kept for the val canvases')
    p.add_argument('--canvas', type=int, default=128)
    p.add_argument('--min-items', type=int, default=2)
    p.add_argument('--max-items', type=int, default=5)
    p.add_argument('--scale', type=float, nargs=2, default=(0.8, 2.5),
                   metavar=('LOW', 'HIGH'))
    p.add_argument('--threshold', type=int, default=20,
                   help='silhouette = pixels brighter than this (0-255)')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Write the set as the command line ``argv`` says (``sys.argv[1:]``
    when None).

    Raises:
        SystemExit: Missing Fashion-MNIST files or bad settings (the
            message).
    """
    args = parse_args(argv)
    imgs = read_idx(find_idx(args.fmnist_root, 'train-images-idx3-ubyte'))
    labels = read_idx(find_idx(args.fmnist_root, 'train-labels-idx1-ubyte'))
    t0 = time.time()
    try:
        settings = ComposeSettings(
            canvas_size=args.canvas, min_items=args.min_items,
            max_items=args.max_items, scale_range=tuple(args.scale),
            threshold=args.threshold)
        items = split_item_range((args.item_start, args.item_end), len(imgs),
                                 args.val_fraction)
        for split, idx in items.items():
            print(f'{split}: items from Fashion-MNIST train indices '
                  f'{idx[0]}-{idx[-1]}', file=sys.stderr)
        files = make_composed_coco(
            imgs, labels, args.out, items,
            dict(train=args.num_train, val=args.num_val), settings,
            seed=args.seed)
    except ValueError as e:
        raise SystemExit(f'error: {e}')
    print(f'done in {time.time() - t0:.0f}s: ' + ', '.join(
        f'{split} -> {path}' for split, path in files.items()))


if __name__ == '__main__':
    main()
