"""Mask R-CNN transfer on the composed Fashion-MNIST COCO set, per start.

    python benchmarks/detection_benchmark.py \\
        --start npid=work_dirs/demo_npid/epoch_12.pth --start random=none \\
        [--start mocov2=...] [--epochs 3] [--threads 1] [--work-dir work_dirs/detection_benchmark]

Every start fine-tunes the same detector
(configs/benchmarks/mmdetection/fmnist_coco/mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py:
the ResNet-18 at width 16 of our Fashion-MNIST pretraining configs, FPN,
all layers trained, BN not frozen) for the same ``--epochs`` (lr x0.1 after
``epochs - 1``) with the same seed, through ``tools/det_train.py``; the
backbone comes from the start's checkpoint (``init_cfg`` Pretrained with
prefix ``backbone.``), or from random init for ``NAME=none``. The set is
made by ``tools/dataset_converters/make_fmnist_coco.py`` if missing (items
from Fashion-MNIST train indices 50000-59999, disjoint from the first 10k/50k
pretraining images). COCO box and mask AP on its 500 val images.

Resumable: a start whose results exist (same checkpoint bytes, epochs and
seed) is not rerun; an interrupted one resumes from its last checkpoint.
Results go to ``<work-dir>/<NAME>/result.json`` (so several invocations can
run side by side) and the table of the given starts to ``--docs-out`` (default: print).
"""
import argparse
import os.path as osp

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

from benchmarks.lib import (DET_CONFIG, DET_METRICS, ROOT, ensure_fmnist_coco,
                            finetune_detector, parse_starts)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--start', action='append', required=True,
                   metavar='NAME=CHECKPOINT',
                   help="a pretrained start (a pretraining checkpoint with "
                   "backbone.* keys), or NAME=none for random init")
    p.add_argument('--config', default=DET_CONFIG,
                   help='the detector to fine-tune (default: the ResNet-18 '
                   'w16 one; the 15-minute recipes use '
                   'mask-rcnn_resnet18-w32s2-fpn_1xb4-6e_fmnist-coco.py)')
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fmnist_coco'))
    p.add_argument('--work-dir',
                   default=osp.join(ROOT, 'work_dirs/detection_benchmark'))
    p.add_argument('--docs-out', default='',
                   help='write the markdown table to this file')
    args = p.parse_args()
    args.starts = parse_starts(p, args.start)
    return args


def table(results, args):
    lines = [
        f'Mask R-CNN (`{osp.basename(args.config)}`) fine-tuned {args.epochs} epochs on the '
        f'composed Fashion-MNIST COCO set (2000 train images), seed '
        f'{args.seed}, {args.threads} thread(s); COCO AP on its 500 val '
        'images.', '',
        '| start | box AP | box AP50 | mask AP | mask AP50 | fine-tuning wall '
        'time |', '|---|---|---|---|---|---|'
    ]
    for name, r in results['starts'].items():
        lines.append(
            f"| {name} (`{r['checkpoint']}`) | "
            + ' | '.join(f'{100 * r[k]:.1f}' for k in DET_METRICS)
            + f" | {r['seconds'] / 60:.1f} min |")
    return '\n'.join(lines)


def main():
    args = parse_args()
    ensure_fmnist_coco(args.data_root)
    results = dict(starts={})
    for name, ckpt in args.starts.items():
        results['starts'][name] = finetune_detector(
            name, ckpt, osp.join(args.work_dir, name),
            data_root=args.data_root, config=args.config, epochs=args.epochs,
            seed=args.seed, threads=args.threads)
    text = table(results, args)
    print(text)
    if args.docs_out:
        with open(args.docs_out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
