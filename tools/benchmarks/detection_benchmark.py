"""Mask R-CNN transfer on the composed Fashion-MNIST COCO set, per start.

    python tools/benchmarks/detection_benchmark.py \\
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
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _pretrain  # noqa: E402  (tools/benchmarks)

CONFIG = osp.join(ROOT, 'configs/benchmarks/mmdetection/fmnist_coco/'
                  'mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py')
METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
           'coco/segm_mAP_50')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--start', action='append', required=True,
                   metavar='NAME=CHECKPOINT',
                   help="a pretrained start (a pretraining checkpoint with "
                   "backbone.* keys), or NAME=none for random init")
    p.add_argument('--config', default=CONFIG,
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
    args.starts = _pretrain.parse_starts(p, args.start)
    return args


def last_metrics(work_dir):
    """The last validation metrics mmengine logged in ``work_dir``."""
    return _pretrain.last_metrics(work_dir, METRICS[0])


def run_start(name, ckpt, args):
    wd = osp.join(args.work_dir, name)
    os.makedirs(wd, exist_ok=True)
    e = args.epochs
    opts = [
        f'train_cfg.max_epochs={e}', f'train_cfg.val_interval={e}',
        f'param_scheduler.1.end={e}', f'param_scheduler.1.milestones=[{max(e - 1, 1)}]',
        f'randomness.seed={args.seed}',
        f'train_dataloader.dataset.data_root={args.data_root}/',
        f'val_dataloader.dataset.data_root={args.data_root}/',
        f'test_dataloader.dataset.data_root={args.data_root}/',
        f'val_evaluator.ann_file={args.data_root}/annotations/instances_val.json',
        f'test_evaluator.ann_file={args.data_root}/annotations/instances_val.json',
        'default_hooks.checkpoint.interval=1',
    ]
    opts.append('model.backbone.init_cfg=None' if ckpt == 'none' else
                f'model.backbone.init_cfg.checkpoint={osp.abspath(ckpt)}')
    config = getattr(args, 'config', CONFIG)  # claims_benchmark's Namespace
    cmd = [sys.executable, osp.join(ROOT, 'tools/det_train.py'), config,
           '--work-dir', wd]
    if osp.exists(osp.join(wd, 'last_checkpoint')):
        cmd.append('--resume')
    cmd += ['--cfg-options', *opts]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    print(f'[{name}] Mask R-CNN {e} epochs from {ckpt}: {" ".join(cmd)}',
          flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    seconds = time.time() - t
    metrics = last_metrics(wd)
    if metrics is None:
        raise RuntimeError(f'[{name}] no COCO metrics logged in {wd}')
    return dict(checkpoint=ckpt, seconds=seconds,
                **{k: metrics[k] for k in METRICS})


def sha256(path):
    if path == 'none':
        return 'none'
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def same_setting(setting, ckpt, epochs, seed):
    """A result was made from this start (the same checkpoint bytes,
    wherever they lie now), epochs and seed."""
    if (setting.get('epochs'), setting.get('seed')) != (epochs, seed):
        return False
    old = setting.get('checkpoint')
    if old == 'none' or ckpt == 'none':
        return old == ckpt
    return osp.isfile(old) and sha256(old) == sha256(ckpt)


def run_or_reuse(name, ckpt, args):
    """``<work_dir>/<name>/result.json`` if it was made with this start,
    ``args.epochs`` and ``args.seed``; otherwise fine-tune and write it (one
    file per start, so several invocations can run side by side)."""
    res_path = osp.join(args.work_dir, name, 'result.json')
    done = None
    if osp.exists(res_path):
        with open(res_path) as f:
            done = json.load(f)
    if done and same_setting(done['setting'], ckpt, args.epochs, args.seed):
        print(f'[{name}] done: {done}', flush=True)
        return done
    done = dict(setting=dict(checkpoint=ckpt, epochs=args.epochs,
                             seed=args.seed),
                **run_start(name, ckpt, args))
    with open(res_path, 'w') as f:
        json.dump(done, f, indent=2)
    print(f'[{name}] {done}', flush=True)
    return done


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
            + ' | '.join(f'{100 * r[k]:.1f}' for k in METRICS)
            + f" | {r['seconds'] / 60:.1f} min |")
    return '\n'.join(lines)


def main():
    args = parse_args()
    if not osp.exists(osp.join(args.data_root, 'annotations',
                               'instances_val.json')):
        subprocess.run([sys.executable, osp.join(
            ROOT, 'tools/dataset_converters/make_fmnist_coco.py'),
            '--out', args.data_root], check=True, cwd=ROOT)
    results = dict(starts={})
    for name, ckpt in args.starts.items():
        results['starts'][name] = run_or_reuse(name, ckpt, args)
    text = table(results, args)
    print(text)
    if args.docs_out:
        with open(args.docs_out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
