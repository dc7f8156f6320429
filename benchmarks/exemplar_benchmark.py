"""Exemplar-v2 on Fashion-MNIST against MoCo v2 and supervised cross-entropy.

    python benchmarks/exemplar_benchmark.py [--train-size 60000]
        [--epochs 10] [--threads 2] [--work-dir work_dirs/exemplar_benchmark]
        [--only exemplar mocov2 supervised]

Every run pretrains the same backbone (ResNet-18 at width 16, CIFAR stem,
1x28x28) for the same number of epochs at the same batch size on the first
``--train-size`` training images, through ``tools/train.py`` (mmengine's
Runner, the registered components), from the configs:

  exemplar    configs/exemplar/exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py
              (labels drop same-class keys from the negatives)
  mocov2      configs/mocov2/mocov2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py
              (mmpretrain's MoCo: the same neck, queue, data, optimiser; no labels)
  supervised  configs/supervised/resnet18-w16_1xb128-coslr-10e_fashion-mnist.py
              (ImageClassifier, cross-entropy on the labels, one view)

Only the schedule's length (cosine over ``--epochs``), the training subset,
the batch size, the queue length and the seed are overridden. Each backbone
is then evaluated on the same features: the global-average-pooled last
stage (128-d, L2-normalised), extracted with the test pipeline for the
pretraining images (reference / training set) and the first ``--test-size``
test images. Two read-outs: weighted kNN (cosine, tau 0.07, k = 20 and 200)
and a linear probe (``mm_instdisc.modules.readout``: standardised
features, full-batch L-BFGS, seed fixed). Raw pixels and the randomly
initialised network are the baselines.

Resumable: a run whose final checkpoint exists is not retrained (its
recorded wall time is reused); an interrupted run resumes from its last
checkpoint. Results go to ``<work-dir>/results.json`` and
``benchmarks/reports/exemplar.md`` (``--docs-out``).
"""
import argparse
import copy
import json
import os
import os.path as osp
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

import torch

from benchmarks.lib import ROOT, setup_mmpretrain, train_run
from benchmarks.lib.method_runs import EXEMPLAR_RUNS as RUNS
from benchmarks.lib.method_runs import exemplar_run_config

LABELS = {
    'raw pixels': 'raw pixels (784-d)',
    'random init': 'random-init network',
    'exemplar': 'Exemplar-v2 (labels filter negatives)',
    'mocov2': 'MoCo v2 (mmpretrain, no labels)',
    'supervised': 'supervised cross-entropy',
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--work-dir',
                   default=osp.join(ROOT, 'work_dirs/exemplar_benchmark'))
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--train-size', type=int, default=60000,
                   help='pretraining images (also the kNN / probe reference)')
    p.add_argument('--test-size', type=int, default=10000,
                   help='test images classified')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--queue-len', type=int, default=4096,
                   help='queue length of Exemplar and MoCo v2')
    p.add_argument('--probe-epochs', type=int, default=10,
                   help='L-BFGS rounds (20 iterations each) of the probe')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--only', nargs='+', choices=RUNS,
                   help='runs to do (default: all); baselines always')
    p.add_argument('--docs-out',
                   default=osp.join(ROOT, 'benchmarks/reports/exemplar.md'),
                   help="markdown table path ('' to skip)")
    return p.parse_args()


def run_config(name, args):
    """The config of one run, with the benchmark's common overrides."""
    return exemplar_run_config(
        name, data_root=args.data_root, train_size=args.train_size,
        test_size=args.test_size, epochs=args.epochs,
        batch_size=args.batch_size, queue_len=args.queue_len, seed=args.seed)


def evaluate(name, train_feats, test_feats, args):
    """kNN (k=20, 200) and linear-probe top-1 of one set of features."""
    from mm_instdisc.modules import readout
    t = time.time()
    row = dict(name=name, **readout(*train_feats, *test_feats,
                                    num_classes=10,
                                    probe_epochs=args.probe_epochs,
                                    seed=args.seed),
               eval_seconds=time.time() - t)
    print(f'[{name}] {row}', flush=True)
    return row


def backbone_features(name, cfg, checkpoint, loaders):
    from mm_instdisc.evaluation import extract_features, load_model
    model = load_model(copy.deepcopy(cfg), checkpoint)
    train_loader, test_loader = loaders
    tr = extract_features(model, train_loader, 'backbone',
                          desc=f'{name} train')
    te = extract_features(model, test_loader, 'backbone', desc=f'{name} test')
    return tr, te


def write_docs(results, args, path):
    rows = results['rows']
    runs = results['runs']
    lines = [
        '# Exemplar benchmark on Fashion-MNIST (CPU)', '',
        'Produced by `python benchmarks/exemplar_benchmark.py '
        f'--train-size {args.train_size} --epochs {args.epochs} '
        f'--threads {args.threads}` (seed {args.seed}, batch '
        f'{args.batch_size}, queue {args.queue_len}). Every network is the '
        'same ResNet-18 at width 16 (CIFAR stem, 1x28x28 input), pretrained '
        f'for {args.epochs} epochs on the first {args.train_size} training '
        'images: Exemplar-v2 and MoCo v2 (same neck, queue, two-view '
        'augmentation, optimiser), and supervised cross-entropy (one view, '
        'same augmentation). Read-outs on the backbone features (global '
        'average pool of the last stage, 128-d, L2-normalised), the same for '
        f'every method, for the first {args.test_size} test images against '
        'the pretraining images: weighted kNN (cosine, tau 0.07) and a '
        'linear probe (standardised features, full-batch L-BFGS, '
        f'{args.probe_epochs}x20 iterations, wd 1e-4). Wall time: '
        'pretraining only, on a shared 2-core machine.', '',
        '| features | kNN top-1 k=20 | kNN top-1 k=200 | linear probe '
        'top-1 | pretraining wall time |', '|---|---|---|---|---|'
    ]
    for name in ['raw pixels', 'random init'] + RUNS:
        r = rows.get(name)
        if r is None:
            continue
        wall = runs.get(name, {}).get('seconds')
        wall = f'{wall / 60:.1f} min' if wall else '-'
        lines.append(f"| {LABELS[name]} | {r['knn_k20']:.2f} | "
                     f"{r['knn_k200']:.2f} | {r['linear']:.2f} | {wall} |")
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    from mm_instdisc.evaluation import build_knn_dataloaders, pixel_features
    os.makedirs(args.work_dir, exist_ok=True)
    res_path = osp.join(args.work_dir, 'results.json')
    results = json.load(open(res_path)) if osp.exists(res_path) else {}
    setting = dict(train_size=args.train_size, test_size=args.test_size,
                   epochs=args.epochs, batch_size=args.batch_size,
                   queue_len=args.queue_len, seed=args.seed,
                   probe_epochs=args.probe_epochs)
    if results.get('setting') != setting:
        results = dict(setting=setting)  # other settings: start the table anew
    results.setdefault('rows', {})
    results.setdefault('runs', {})

    def save():
        with open(res_path, 'w') as f:
            json.dump(results, f, indent=2)

    ref_cfg = run_config('exemplar', args)
    loaders = build_knn_dataloaders(ref_cfg, batch_size=512)
    if 'random init' not in results['rows']:
        print('== baselines: raw pixels, random init', flush=True)
        px = pixel_features(loaders[0]), pixel_features(loaders[1])
        results['rows']['raw pixels'] = evaluate('raw pixels', *px, args)
        torch.manual_seed(args.seed)
        feats = backbone_features('random init', ref_cfg, 'none', loaders)
        results['rows']['random init'] = evaluate('random init', *feats,
                                                  args)
        save()
    for name in args.only or RUNS:
        cfg = run_config(name, args)
        ckpt, seconds = train_run(
            name, cfg, osp.join(args.work_dir, name), args.epochs,
            args.threads, f' on {args.train_size} images')
        results['runs'][name] = dict(checkpoint=ckpt, seconds=seconds)
        feats = backbone_features(name, cfg, ckpt, loaders)
        results['rows'][name] = evaluate(name, *feats, args)
        save()
    print(json.dumps(results['rows'], indent=1))
    if args.docs_out:
        write_docs(results, args, args.docs_out)
        print(f'wrote {args.docs_out}')


if __name__ == '__main__':
    main()
