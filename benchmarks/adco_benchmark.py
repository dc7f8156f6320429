"""AdCo on Fashion-MNIST: kNN accuracy against MoCo v2 and NPID, AdCo with
K, K/4 and K/8 negatives, and the step-time ratio AdCo / MoCo v2.

    python benchmarks/adco_benchmark.py [--train-size 10000] [--epochs 10]
        [--threads 2] [--only adco mocov2 ...] [--work-dir work_dirs/adco_benchmark]

Every run pretrains the same backbone (ResNet-18 at width 16, CIFAR stem,
1x28x28) for the same number of epochs at the same batch size on the first
``--train-size`` training images, through ``tools/train.py`` (mmengine's
Runner, the registered components), from the configs:

  adco      configs/adco/adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py (K)
  adco-K/4  the same with K/4 negatives, adco-K/8 with K/8
  mocov2    configs/mocov2/mocov2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py
            (mmpretrain's MoCo, queue of K keys, same neck, data, optimiser)
  npid      configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py

Only the schedule's length (cosine over ``--epochs``), the training subset,
the batch size and the seed are overridden. Weighted kNN (cosine, tau 0.07,
k = 20 and 200) classifies the 10,000 test images against the pretraining
images, on backbone features (global average pool, the same 128-d for every
method) and on each method's 128-d embedding; raw pixels and the randomly
initialised network are the baselines.

The step-time ratio is measured in-process on one real batch: AdCo's and
MoCo v2's ``train_step`` (forward, backward, optimizer step, EMA, negatives'
ascent or queue update) timed alternately, median of ``--timing-repeat``.

Resumable: a run whose final checkpoint exists is not retrained (its
recorded wall time is reused); an interrupted run resumes from its last
checkpoint. Results go to ``<work-dir>/results.json`` and
``benchmarks/reports/adco.md``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

import torch

from benchmarks.lib import ROOT, setup_mmpretrain, train_run
from benchmarks.lib.method_runs import ADCO_RUNS as RUNS
from benchmarks.lib.method_runs import adco_run_config


def run_config(name, args):
    """The config of one run, with the benchmark's common overrides."""
    return adco_run_config(
        name, data_root=args.data_root, train_size=args.train_size,
        epochs=args.epochs, batch_size=args.batch_size,
        num_negatives=args.num_negatives, seed=args.seed, lr=args.lr)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/adco_benchmark'))
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--train-size', type=int, default=10000)
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--num-negatives', type=int, default=4096,
                   help='K for AdCo, the MoCo v2 queue length and NPID\'s '
                   'NCE noise samples m (below --train-size)')
    p.add_argument('--lr', type=float, default=None,
                   help="encoder lr for every run (default: each config's)")
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--only', nargs='+', choices=RUNS + ['timing'],
                   help='runs to do (default: all, then timing)')
    p.add_argument('--timing-repeat', type=int, default=20)
    p.add_argument('--random-seeds', type=int, default=5,
                   help='random-init networks averaged for the baseline')
    p.add_argument('--no-docs', action='store_true',
                   help='do not write benchmarks/reports/adco.md')
    return p.parse_args()


def knn_rows(name, cfg, checkpoint, loaders, features=('backbone', 'embed')):
    from mm_instdisc.evaluation import extract_features, load_model
    from mm_instdisc.modules import readout
    model = load_model(copy.deepcopy(cfg), checkpoint)
    train_loader, test_loader = loaders
    row = dict(name=name)
    for feature in features:
        if feature == 'embed' and not hasattr(model, 'embed'):
            continue
        tr = extract_features(model, train_loader, feature, desc=f'{name} train')
        te = extract_features(model, test_loader, feature, desc=f'{name} test')
        res = readout(*tr, *te, probe=False)
        for k in (20, 200):
            row[f'{feature}_k{k}'] = res[f'knn_k{k}']
    return row


def random_init_row(cfg, loaders, num_seeds):
    """kNN of randomly initialised networks, seeds 0..num_seeds-1: mean,
    and min / max per read-out (random features vary by several points)."""
    rows = []
    for seed in range(num_seeds):
        torch.manual_seed(seed)
        rows.append(knn_rows(f'random init (seed {seed})', cfg, 'none',
                             loaders))
    out = dict(name='random init', seeds=list(range(num_seeds)))
    for key in rows[0]:
        if key == 'name':
            continue
        vals = [r[key] for r in rows]
        out[key] = statistics.mean(vals)
        out[key + '_min'], out[key + '_max'] = min(vals), max(vals)
    return out


def step_time_ratio(args, repeat):
    """Median train_step time of AdCo and MoCo v2 on the same real batch."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    out = {}
    steps = {}
    batch = None
    for name in ('adco', 'mocov2'):
        cfg = run_config(name, args)
        if batch is None:
            loader_cfg = copy.deepcopy(cfg.train_dataloader)
            loader_cfg.dataset.indices = args.batch_size * 2
            batch = next(iter(Runner.build_dataloader(loader_cfg)))
        if name == 'adco':
            cfg.model.negatives_init = 'random'  # time the steady state
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.train()
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

        def step(model=model, wrapper=wrapper):
            model.train_step(copy.copy(batch), wrapper)
        steps[name] = step
    for f in steps.values():  # warm-up
        for _ in range(3):
            f()
    times = {n: [] for n in steps}
    for _ in range(repeat):
        for n, f in steps.items():
            t = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t)
    for n in steps:
        out[f'{n}_step_s'] = statistics.median(times[n])
    out['ratio'] = out['adco_step_s'] / out['mocov2_step_s']
    out['batch_size'] = args.batch_size
    out['num_negatives'] = args.num_negatives
    out['threads'] = torch.get_num_threads()
    return out


def write_docs(results, args, path):
    rows = results.get('rows', {})
    runs = results.get('runs', {})
    lines = [
        '# AdCo benchmark on Fashion-MNIST (CPU)', '',
        'Produced by `python benchmarks/adco_benchmark.py '
        f'--train-size {args.train_size} --epochs {args.epochs} '
        f'--threads {args.threads}` (seed {args.seed}, batch '
        f'{args.batch_size}, K = {args.num_negatives}). Every network is the '
        'same ResNet-18 at width 16 (CIFAR stem, 1x28x28 input), pretrained '
        f'for {args.epochs} epochs on the first {args.train_size} training '
        'images. Weighted kNN (cosine, tau 0.07) classifies the 10,000 test '
        'images against those training images. "backbone" = global-average-'
        'pooled last stage (128-d, the same for every method); "embed" = the '
        "method's own L2-normalised 128-d output. Random init: the mean "
        f'(min-max) over {args.random_seeds} seeds of the initialisation; '
        'kNN on random features varies by several points with the seed. '
        'Wall time: pretraining only, on a shared 2-core machine.', '',
        '| features | backbone k=20 | backbone k=200 | embed k=20 | '
        'embed k=200 | pretraining wall time |',
        '|---|---|---|---|---|---|'
    ]
    order = ['raw pixels', 'random init'] + RUNS
    for name in order:
        r = rows.get(name)
        if r is None:
            continue
        cells = [(f"{r[c]:.2f}" + (f" ({r[c + '_min']:.2f}-{r[c + '_max']:.2f})"
                                   if c + '_min' in r else ''))
                 if c in r else '-' for c in
                 ('backbone_k20', 'backbone_k200', 'embed_k20', 'embed_k200')]
        wall = runs.get(name, {}).get('seconds')
        wall = f'{wall / 60:.1f} min' if wall else '-'
        label = {'adco': f'AdCo, K={args.num_negatives}',
                 'adco-K/4': f'AdCo, K={args.num_negatives // 4}',
                 'adco-K/8': f'AdCo, K={args.num_negatives // 8}',
                 'mocov2': f'MoCo v2 (mmpretrain), queue {args.num_negatives}',
                 'npid': f'NPID (NCE, m={args.num_negatives}, memory bank)'}.get(
                     name, name)
        lines.append(f'| {label} | ' + ' | '.join(cells) + f' | {wall} |')
    t = results.get('timing')
    if t:
        lines += [
            '', '## Step time', '',
            f"One `train_step` (forward, backward, optimizer step, key-encoder "
            f"EMA, negatives' ascent / queue update), batch {t['batch_size']}, "
            f"K = {t['num_negatives']}, {t['threads']} threads, median of "
            f'{args.timing_repeat} alternating timings on one real batch:', '',
            '| AdCo | MoCo v2 | ratio AdCo / MoCo v2 |', '|---|---|---|',
            f"| {t['adco_step_s'] * 1000:.1f} ms | "
            f"{t['mocov2_step_s'] * 1000:.1f} ms | {t['ratio']:.3f} |"
        ]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    from mm_instdisc.evaluation import build_knn_dataloaders, pixel_features
    from mm_instdisc.modules import readout
    os.makedirs(args.work_dir, exist_ok=True)
    res_path = osp.join(args.work_dir, 'results.json')
    results = json.load(open(res_path)) if osp.exists(res_path) else {}
    results.setdefault('rows', {})
    results.setdefault('runs', {})
    save = lambda: json.dump(results, open(res_path, 'w'), indent=2)  # noqa

    todo = args.only or RUNS + ['timing']
    ref_cfg = run_config('adco', args)
    loaders = build_knn_dataloaders(ref_cfg, batch_size=512)
    if results['rows'].get('random init', {}).get('seeds') != list(
            range(args.random_seeds)):
        print('== baselines: raw pixels, random init', flush=True)
        px_tr, px_te = pixel_features(loaders[0]), pixel_features(loaders[1])
        r = readout(*px_tr, *px_te, probe=False)
        results['rows']['raw pixels'] = dict(
            name='raw pixels', backbone_k20=r['knn_k20'],
            backbone_k200=r['knn_k200'])
        results['rows']['random init'] = random_init_row(ref_cfg, loaders,
                                                         args.random_seeds)
        save()
    for name in RUNS:
        if name not in todo:
            continue
        cfg = run_config(name, args)
        ckpt, seconds = train_run(
            name, cfg, osp.join(args.work_dir, name.replace('/', '')),
            args.epochs, args.threads, f' on {args.train_size} images')
        results['runs'][name] = dict(checkpoint=ckpt, seconds=seconds)
        results['rows'][name] = knn_rows(name, cfg, ckpt, loaders)
        print(results['rows'][name], flush=True)
        save()
    if 'timing' in todo:
        print('== step time AdCo / MoCo v2', flush=True)
        results['timing'] = step_time_ratio(args, args.timing_repeat)
        print(results['timing'], flush=True)
        save()
    print(json.dumps(results['rows'], indent=1))
    if not args.no_docs:
        write_docs(results, args, osp.join(ROOT, 'benchmarks/reports/adco.md'))
        print('wrote benchmarks/reports/adco.md')


if __name__ == '__main__':
    main()
