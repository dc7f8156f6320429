"""Fixed-budget recipes on all of Fashion-MNIST: pretrain, then kNN and linear probe.

    python tools/benchmarks/recipes_benchmark.py                      # every method, 3 seeds
    python tools/benchmarks/recipes_benchmark.py --methods npid --seeds 0
    python tools/benchmarks/recipes_benchmark.py --report-only

For each method and seed: pretrain its recipe config through tools/train.py
with 2 threads (resumable: a finished run is reused, an interrupted one resumes
from its last checkpoint), then read out the global-average-pooled backbone:
weighted kNN (cosine, tau 0.07, k = 20 and 200) of the 10,000 test images
against all 60,000 training images, and a linear probe (L-BFGS on standardised
features). Beside them, measured the same way: raw pixels (mean-centred) and
the same network at its random initialisation (one per seed). The curve of
kNN accuracy against wall-clock minutes comes from the recipe's own validation
(kNN against the memory bank, or the training embeddings, every few epochs).

Writes docs/benchmarks_recipes.md and docs/benchmarks_recipes.png. Budget: a
recipe must finish pretraining within --budget-min minutes of wall time on the
2-core machine with nothing else running; the table reports each run's wall
time against it.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _pretrain import ROOT, setup_mmpretrain, train_run  # noqa: E402

sys.path.insert(0, ROOT)  # an uninstalled checkout, as the other benchmarks

# method -> (recipe config, epochs it trains, a line for the report)
METHODS = {
    'npid': ('configs/npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
             14, 'NPID, sampled softmax over 8192 shared negatives, ResNet-18 w32 (stride-2 first '
             'stage), batched augmentation, bf16'),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=list(METHODS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--budget-min', type=float, default=15.0)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/recipes'))
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--doc', default=osp.join(ROOT, 'docs/benchmarks_recipes.md'))
    return p.parse_args()


def readout(cfg, checkpoint, loaders, seed):
    """kNN k=20/200 and linear probe of the pooled backbone (or of pixels)."""
    from mm_instdisc.apis import (extract_features, knn_evaluate, linear_probe,
                                  load_model, pixel_features)
    if checkpoint == 'pixels':
        tr, te = pixel_features(loaders[0]), pixel_features(loaders[1])
    else:
        model = load_model(cfg, checkpoint)
        tr = extract_features(model, loaders[0], 'backbone', desc='train')
        te = extract_features(model, loaders[1], 'backbone', desc='test')
    knn = knn_evaluate(tr[0], tr[1], te[0], te[1], ks=(20, 200),
                       temperature=0.07)
    probe = linear_probe(tr[0], tr[1], te[0], te[1], num_classes=10,
                         seed=seed)
    return dict(knn_k20=knn[20][1], knn_k200=knn[200][1], linear=probe['top1'])


def val_curve(work_dir, wall_s):
    """(minutes, kNN top-1 k=200) of the run's validations; minutes are the
    logged iteration times accumulated and scaled to the measured wall time."""
    rows, t, points = [], 0.0, []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    for r in rows:
        if 'time' in r and 'loss' in r:
            t += r['time'] * 50  # logger interval of the recipes
        key = next((k for k in r if k.endswith('top1_k200')), None)
        if key is not None:
            points.append([t, r[key]])
    if points and points[-1][0] > 0:
        scale = wall_s / points[-1][0]
        points = [[m * scale / 60, a] for m, a in points]
    return points


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.join(args.work_dir, 'results.json')
    results = json.load(open(path)) if osp.exists(path) else {}

    def save():
        with open(path, 'w') as f:
            json.dump(results, f, indent=1)

    if not args.report_only:
        import torch
        torch.set_num_threads(args.threads)
        setup_mmpretrain()
        from mmengine.config import Config
        from mm_instdisc.apis import build_knn_dataloaders
        for method in args.methods:
            config, epochs, _ = METHODS[method]
            cfg = Config.fromfile(osp.join(ROOT, config))
            loaders = build_knn_dataloaders(cfg, 512)
            if 'pixels' not in results:
                results['pixels'] = readout(cfg, 'pixels', loaders, 0)
                save()
            for seed in args.seeds:
                key = f'{method}/{seed}'
                if f'{method}-random/{seed}' not in results:
                    torch.manual_seed(seed)
                    results[f'{method}-random/{seed}'] = readout(
                        cfg, 'none', loaders, seed)
                    save()
                if key in results:
                    print(f'[{key}] done: {results[key]}')
                    continue
                run_cfg = Config.fromfile(osp.join(ROOT, config))
                run_cfg.randomness = dict(seed=seed, deterministic=False)
                work_dir = osp.join(args.work_dir, method, f'seed{seed}')
                ckpt, wall = train_run(key, run_cfg, work_dir, epochs,
                                       args.threads)
                t = time.time()
                results[key] = dict(readout(cfg, ckpt, loaders, seed),
                                    wall_s=wall, readout_s=0.0,
                                    curve=val_curve(work_dir, wall))
                results[key]['readout_s'] = time.time() - t
                print(f'[{key}] {results[key]}', flush=True)
                save()
    write_report(args, results)


def mean_std(vals):
    if len(vals) == 1:
        return f'{vals[0]:.2f}'
    return f'{statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f}'


def write_report(args, results):
    px = results.get('pixels')
    lines = [
        '# Fixed-budget recipes on Fashion-MNIST (measured)', '',
        'Written by `.venv/bin/python tools/benchmarks/recipes_benchmark.py` (resumable; '
        '`--report-only` rewrites this page). Pretraining on all 60,000 training images, '
        f'2 threads on the 2-core CPU machine, budget {args.budget_min:.0f} minutes of wall '
        'time per run. Read-out of the global-average-pooled backbone: weighted kNN (cosine, '
        'tau 0.07) of the 10,000 test images against the 60,000 training images, and a linear '
        'probe (L-BFGS, standardised features). Random init: the same network before '
        'training, one per seed. Mean +- std over the seeds listed.', '',
        '| features | seeds | kNN k=20 | kNN k=200 | linear probe | pretraining wall time | '
        'within budget | beats raw pixels (k=200 / probe) | beats random init (k=200 / probe) |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    if px:
        lines.append(f'| raw pixels (mean-centred) | - | {px["knn_k20"]:.2f} | '
                     f'{px["knn_k200"]:.2f} | {px["linear"]:.2f} | - | - | - | - |')
    curves = {}
    for method, (config, epochs, desc) in METHODS.items():
        rnd = [results[k] for k in sorted(results)
               if k.startswith(f'{method}-random/')]
        runs = {k: results[k] for k in sorted(results)
                if k.startswith(f'{method}/')}
        if rnd:
            lines.append(
                f'| {method}: random init | {len(rnd)} | '
                f'{mean_std([r["knn_k20"] for r in rnd])} | '
                f'{mean_std([r["knn_k200"] for r in rnd])} | '
                f'{mean_std([r["linear"] for r in rnd])} | - | - | - | - |')
        if not runs:
            continue
        r = list(runs.values())
        k200 = statistics.mean(x['knn_k200'] for x in r)
        lin = statistics.mean(x['linear'] for x in r)
        walls = [x['wall_s'] / 60 for x in r]
        ok = all(w <= args.budget_min for w in walls)
        rk = statistics.mean(x['knn_k200'] for x in rnd) if rnd else float('nan')
        rl = statistics.mean(x['linear'] for x in rnd) if rnd else float('nan')
        yes = lambda b: 'yes' if b else '**no**'  # noqa: E731
        lines.append(
            f'| {method}: {desc} (`{config}`, {epochs} epochs) | {len(r)} | '
            f'{mean_std([x["knn_k20"] for x in r])} | {mean_std([x["knn_k200"] for x in r])} | '
            f'{mean_std([x["linear"] for x in r])} | '
            f'{", ".join(f"{w:.1f}" for w in walls)} min | {yes(ok)} | '
            f'{yes(px and k200 > px["knn_k200"])} / {yes(px and lin > px["linear"])} | '
            f'{yes(k200 > rk)} / {yes(lin > rl)} |')
        curves.update({k: v['curve'] for k, v in runs.items() if v.get('curve')})
    missing = [m for m in METHODS if not any(k.startswith(f'{m}/') for k in results)]
    if missing:
        lines += ['', f'Not run yet: {", ".join(missing)}.']
    if curves:
        plot(args, curves, px, results)
        lines += ['', '![kNN vs wall-clock minutes](benchmarks_recipes.png)', '',
                  'The curve is each recipe\'s own validation (kNN k=200 against its memory bank '
                  'or training embeddings, the config\'s validation set) against wall-clock '
                  'minutes; the horizontal lines are the read-out table\'s raw-pixel and '
                  'random-init kNN k=200.']
    with open(args.doc, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


def plot(args, curves, px, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in sorted(curves.items()):
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o',
                    label=name)
    if px:
        ax.axhline(px['knn_k200'], color='k', ls='--', label='raw pixels')
    rnd = [v['knn_k200'] for k, v in results.items() if '-random/' in k]
    if rnd:
        ax.axhline(statistics.mean(rnd), color='grey', ls=':',
                   label='random init (mean)')
    ax.axvline(args.budget_min, color='r', lw=0.8, label='budget')
    ax.set_xlabel('wall-clock minutes of pretraining (2 cores)')
    ax.set_ylabel('kNN top-1, k=200 (%)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(osp.dirname(osp.abspath(args.doc)),
                         'benchmarks_recipes.png'), dpi=90)


if __name__ == '__main__':
    main()
