"""Detection on your own COCO json, measured: Faster R-CNN / Mask R-CNN
fine-tuned with ``mm-instdisc-det-train`` (the user's command, run as a
user runs it) from pretraining checkpoints and from random init, 3 seeds.

    python benchmarks/own_detection.py \\
        --start npid=work_dirs/demo_npid/epoch_9.pth \\
        --start mocov2=work_dirs/mocov2_w16s2/epoch_4.pth \\
        [--sets stardist fmnist-box] [--seeds 0 1 2] [--parallel 2] \\
        [--work-dir work_dirs/own_detection] \\
        [--out benchmarks/reports/own_detection.md]

Data sets (written if missing):

* ``stardist``: StarDist's 512x512 fluorescence image of nuclei as 128 px
  tiles (``tools/dataset_converters/prepare_stardist.py``: 35 training
  tiles with 311 nuclei, 7 test tiles with 45), boxes and masks; Faster
  R-CNN and Mask R-CNN.
* ``fmnist-box``: the composed Fashion-MNIST COCO set
  (``mm-instdisc-make-fmnist-coco``: items from Fashion-MNIST training
  indices 50000-59999 pasted on 128 px canvases; a pretraining on all
  60,000 training images has seen the items, never the canvases or the
  labels) with ``--fmnist-train/--fmnist-val`` images, stripped of its
  segmentations: the box-only json most annotation tools export; Faster
  R-CNN.

The random-init start is ``--random-init`` with the first start's
checkpoint: the same architecture and the pretraining network's own
initialisation. Every run is ``mm-instdisc-det-train`` in its own process
(``OMP_NUM_THREADS=--threads``), ``--parallel`` at a time. A run whose
``result.json`` exists with the same settings is not rerun. The report
(markdown + json + png) gives mean, standard deviation and every seed.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BIN = osp.dirname(sys.executable)
ARCHS = {'stardist': ('faster-rcnn', 'mask-rcnn'),
         'fmnist-box': ('faster-rcnn', )}
METRICS = {'faster-rcnn': ('bbox_mAP', 'bbox_mAP_50'),
           'mask-rcnn': ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP')}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--start', action='append', required=True,
                   metavar='NAME=CHECKPOINT',
                   help='a pretraining checkpoint; random init (the first '
                   "start's architecture) is added as 'random'")
    p.add_argument('--sets', nargs='+', default=['stardist', 'fmnist-box'],
                   choices=sorted(ARCHS))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--stardist-epochs', type=int, default=12)
    p.add_argument('--fmnist-epochs', type=int, default=3)
    p.add_argument('--fmnist-train', type=int, default=300)
    p.add_argument('--fmnist-val', type=int, default=200)
    p.add_argument('--batch-size', type=int, default=4)
    # CPU-sized heads: mmcv's CPU RoIAlign and 256-channel heads made a
    # Mask R-CNN step on 128 px tiles 9 s on one thread (1.0 s with these)
    p.add_argument('--fpn-channels', type=int, default=64)
    p.add_argument('--rois', type=int, default=128)
    p.add_argument('--roi-sampling-ratio', type=int, default=2)
    p.add_argument('--about', action='append', default=[],
                   metavar='NAME=TEXT', help='how a start was pretrained, '
                   'for the report')
    p.add_argument('--parallel', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--data-root', default=osp.join(ROOT, 'data'))
    p.add_argument('--work-dir',
                   default=osp.join(ROOT, 'work_dirs/own_detection'))
    p.add_argument('--out', default=osp.join(
        ROOT, 'benchmarks/reports/own_detection.md'))
    args = p.parse_args(argv)
    starts = {}
    for s in args.start:
        name, sep, path = s.partition('=')
        if not sep or not name or name == 'random' or name in starts:
            p.error(f'--start {s!r}: expected NAME=CHECKPOINT with a new '
                    "NAME other than 'random'")
        if not osp.isfile(path):
            p.error(f'--start {s!r}: no such file {path!r}')
        starts[name] = osp.abspath(path)
    args.starts = starts
    return args


def _sha(path, n=1 << 20):
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        h.update(f.read(n))
    h.update(str(osp.getsize(path)).encode())
    return h.hexdigest()[:12]


def prepare_sets(args):
    """{set: (train json, train images, val json, val images)}."""
    sets = {}
    if 'stardist' in args.sets:
        out = osp.join(args.data_root, 'stardist')
        if not osp.isfile(osp.join(out, 'train.json')):
            subprocess.run([sys.executable, osp.join(
                ROOT, 'tools/dataset_converters/prepare_stardist.py'),
                '--out', out], check=True)
        sets['stardist'] = (osp.join(out, 'train.json'),
                            osp.join(out, 'train/images'),
                            osp.join(out, 'test.json'),
                            osp.join(out, 'test/images'))
    if 'fmnist-box' in args.sets:
        out = osp.join(args.data_root,
                       f'fmnist_coco_{args.fmnist_train}_{args.fmnist_val}')
        if not osp.isfile(osp.join(out, 'annotations/instances_val.json')):
            subprocess.run([
                osp.join(BIN, 'mm-instdisc-make-fmnist-coco'),
                '--fmnist-root', osp.join(args.data_root, 'fashion_mnist'),
                '--out', out, '--num-train', str(args.fmnist_train),
                '--num-val', str(args.fmnist_val)], check=True)
        sets['fmnist-box'] = tuple(
            x for split in ('train', 'val')
            for x in (box_only(osp.join(out, f'annotations/instances_{split}'
                                        '.json')), osp.join(out, split)))
    return sets


def box_only(ann):
    """Write ``ann`` without segmentations (``*_boxes.json``)."""
    out = ann.replace('.json', '_boxes.json')
    if not osp.isfile(out):
        with open(ann) as f:
            coco = json.load(f)
        for a in coco['annotations']:
            a.pop('segmentation', None)
        with open(out, 'w') as f:
            json.dump(coco, f)
    return out


def last_metrics(work_dir):
    """The last validation line of mmengine's scalars.json in work_dir."""
    found = None
    for run in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    row = json.loads(line)
                    if any(k.startswith('coco/') for k in row):
                        found = row
    if found is None:
        raise RuntimeError(f'no COCO metrics in {work_dir}/*/vis_data')
    return {k[len('coco/'):]: float(v) * 100 for k, v in found.items()
            if k.startswith('coco/')}


def run_one(job, args):
    set_name, arch, start, seed, files = job
    wd = osp.join(args.work_dir, set_name, arch, start, f'seed{seed}')
    ckpt = args.starts.get(start, next(iter(args.starts.values())))
    epochs = (args.stardist_epochs if set_name == 'stardist' else
              args.fmnist_epochs)
    settings = dict(set=set_name, arch=arch, start=start, seed=seed,
                    checkpoint=ckpt, checkpoint_sha=_sha(ckpt),
                    epochs=epochs, batch_size=args.batch_size,
                    fpn_channels=args.fpn_channels, rois=args.rois,
                    roi_sampling_ratio=args.roi_sampling_ratio,
                    threads=args.threads, files=list(files))
    res_path = osp.join(wd, 'result.json')
    if osp.isfile(res_path):
        with open(res_path) as f:
            old = json.load(f)
        if old['settings'] == settings:
            return old
    train, train_img, val, val_img = files
    cmd = [osp.join(BIN, 'mm-instdisc-det-train'), '--train', train,
           '--train-images', train_img, '--val', val, '--val-images',
           val_img, '--checkpoint', ckpt, '--arch', arch, '--epochs',
           str(epochs), '--batch-size', str(args.batch_size), '--seed',
           str(seed), '--workers', '0', '--work-dir', wd,
           '--fpn-channels', str(args.fpn_channels), '--rois',
           str(args.rois), '--roi-sampling-ratio',
           str(args.roi_sampling_ratio)]
    if start == 'random':
        cmd.append('--random-init')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    os.makedirs(wd, exist_ok=True)
    t0 = time.time()
    with open(osp.join(wd, 'run.log'), 'w') as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=env, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}); '
                           f'see {wd}/run.log')
    result = dict(settings=settings, metrics=last_metrics(wd),
                  minutes=(time.time() - t0) / 60)
    with open(res_path, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'own_detection: {set_name} {arch} {start} seed {seed}: '
          f'{result["metrics"]} in {result["minutes"]:.1f} min', flush=True)
    return result


def host():
    flags = set()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    break
    shown = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')
             if f in flags]
    bf16 = ('bf16 kernels' if {'avx512_bf16', 'amx_bf16'} & flags else
            'no bf16 kernels: bf16 autocast falls back to float32')
    return (f'{os.cpu_count()} cores, {platform.processor() or "x86-64"}, '
            f'CPU flags {" ".join(shown) or "none of avx2/avx512"} ({bf16})')


def describe_start(path):
    """The iterations and epochs a pretraining checkpoint reached."""
    from mm_instdisc.utils.checkpoint import read_checkpoint
    meta = read_checkpoint(path).get('meta') or {}
    return (f'{meta.get("iter", "?")} iterations, '
            f'{meta.get("epoch", "?")} epochs')


def _stat(values):
    m = statistics.mean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s


def write_report(results, args, sets, started):
    rows = {}
    for r in results:
        s = r['settings']
        rows.setdefault((s['set'], s['arch'], s['start']), []).append(r)
    starts = ['random'] + list(args.starts)
    lines = [
        '# Detection on your own COCO json (measured)', '',
        'Generated by `python benchmarks/own_detection.py '
        + ' '.join(f'--start {k}={osp.relpath(v, ROOT)}'
                   for k, v in args.starts.items())
        + f' --seeds {" ".join(map(str, args.seeds))}` on '
        f'{time.strftime("%Y-%m-%d", time.localtime(started))}; host: '
        f'{host()}; each run `mm-instdisc-det-train` with '
        f'{args.threads} thread(s), {args.parallel} side by side, batch '
        f'{args.batch_size}, CPU-sized heads (`--fpn-channels '
        f'{args.fpn_channels} --rois {args.rois} --roi-sampling-ratio '
        f'{args.roi_sampling_ratio}`). COCO AP (%) on the validation json; mean '
        '+- standard deviation over the seeds, then each seed.', '']
    lines += ['## Starts', '']
    for name, path in args.starts.items():
        about = [a.partition('=')[2] for a in args.about
                 if a.partition('=')[0] == name]
        lines.append(f'* `{name}`: `{osp.relpath(path, ROOT)}` '
                     f'({describe_start(path)})'
                     + ''.join(f': {a}' for a in about))
    lines += [
        '* `random`: `--random-init` with the first start: the same '
        'architecture, the pretraining network\'s own initialisation, the '
        'same seed.', '',
        'Both pretrainings are on Fashion-MNIST (60,000 grey 28 px images, no '
        'labels), for both data sets: StarDist ships one 512x512 image, whose '
        '35 training tiles are too few images for instance discrimination '
        '(NPID would tell 35 images apart), and both its tiles and the '
        'composed canvases are grey like Fashion-MNIST. One pretraining per '
        'method serves both reports.', '']
    for set_name in args.sets:
        ep = (args.stardist_epochs if set_name == 'stardist' else
              args.fmnist_epochs)
        lines += [f'## {set_name} ({ep} epochs)', '',
                  f'Train `{osp.relpath(sets[set_name][0], ROOT)}`, '
                  f'validation `{osp.relpath(sets[set_name][2], ROOT)}`.',
                  '']
        for arch in ARCHS[set_name]:
            mets = METRICS[arch]
            lines += [f'### {arch}', '',
                      '| start | ' + ' | '.join(mets) + ' | seeds ('
                      + mets[0] + ') | minutes per run |',
                      '|---' * (len(mets) + 3) + '|']
            for start in starts:
                rs = rows.get((set_name, arch, start), [])
                if not rs:
                    continue
                cells = []
                for m in mets:
                    mean, sd = _stat([r['metrics'][m] for r in rs])
                    cells.append(f'{mean:.2f} +- {sd:.2f}')
                seeds = ', '.join(
                    f'{r["metrics"][mets[0]]:.2f}' for r in
                    sorted(rs, key=lambda r: r['settings']['seed']))
                mins = statistics.mean(r['minutes'] for r in rs)
                name = (f'random init (architecture of '
                        f'{next(iter(args.starts))})' if start == 'random'
                        else start)
                lines.append(f'| {name} | ' + ' | '.join(cells)
                             + f' | {seeds} | {mins:.1f} |')
            lines.append('')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines))
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(results, f, indent=1)
    plot(rows, args, starts, osp.splitext(args.out)[0] + '.png')
    print('\n'.join(lines))


def plot(rows, args, starts, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(s, a) for s in args.sets for a in ARCHS[s]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5),
                             squeeze=False)
    for ax, (set_name, arch) in zip(axes[0], panels):
        for i, start in enumerate(starts):
            vals = [r['metrics']['bbox_mAP']
                    for r in rows.get((set_name, arch, start), [])]
            if vals:
                ax.bar(i, statistics.mean(vals), color='lightgray')
                ax.plot([i] * len(vals), vals, 'ko', ms=4)
        ax.set_xticks(range(len(starts)), starts)
        ax.set(title=f'{set_name}: {arch}', ylabel='box AP (%)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    sets = prepare_sets(args)
    jobs = [(s, a, start, seed, sets[s]) for seed in args.seeds
            for s in args.sets for a in ARCHS[s]
            for start in ['random'] + list(args.starts)]
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda j: run_one(j, args), jobs))
    write_report(results, args, sets, started)


if __name__ == '__main__':
    main()
