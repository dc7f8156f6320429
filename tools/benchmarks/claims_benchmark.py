"""NPID's NCE accuracy as m grows, and semi-supervised fine-tuning from each
pretrained start, on Fashion-MNIST (claims 2 and 4 of the transfer issue).

    python tools/benchmarks/claims_benchmark.py [--quick] [--threads 1]
        [--start NAME=CHECKPOINT ...] [--only nce semisup]
        [--work-dir work_dirs/claims_benchmark] [--docs-out docs/benchmarks_claims.md]

(2) NCE vs m: NPID (configs/npid/npid_resnet18-w16_1xb128-steplr-10e_
    fashion-mnist.py: NCE, EMA Z, bank initialised by a forward pass) on the
    first ``--train-size`` training images for ``--epochs`` epochs (cosine
    lr), once per m in ``--ms`` and once with the full non-parametric
    softmax; weighted kNN (tau 0.07, k = 20 and 200) of the 128-d embedding,
    test images against the pretraining images. The paper's claim: accuracy
    rises with m and approaches the full softmax.
(4) Semi-supervised: every ``--start`` (a pretraining checkpoint with
    backbone.* keys, or ``none`` = random init) is fine-tuned end to end
    with 1% and with 10% of the labels (configs/benchmarks/classification/
    fashion_mnist/*-1pc.py and *-10pc.py: class-balanced subsets, seed 0)
    for ``--ft-epochs`` epochs (cosine), top-1 on the test set.

Every training runs through tools/train.py; a finished run is not rerun, an
interrupted one resumes. ``--quick`` (about 15 minutes on 2 cores): 2000
images, 3 epochs, m in {1, 64, 512}, fine-tuning 10 / 2 epochs. Writes
``<work-dir>/results.json``, a markdown report with PNG plots next to it
(``--docs-out``) and prints the tables. Each row states epochs, seed and
wall time.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from _pretrain import (last_metrics, parse_starts,  # noqa: E402
                       setup_mmpretrain, train_run)

NPID_CFG = 'configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py'
FT_CFGS = {
    '1%': 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb64-ft-coslr-100e_fashion-mnist-1pc.py',
    '10%': 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb128-ft-coslr-30e_fashion-mnist-10pc.py',
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--work-dir', default=None)
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--train-size', type=int, default=None)
    p.add_argument('--test-size', type=int, default=None)
    p.add_argument('--epochs', type=int, default=None)
    p.add_argument('--ms', type=int, nargs='+', default=None)
    p.add_argument('--ft-epochs', type=int, nargs=2, default=None,
                   metavar=('EPOCHS_1PC', 'EPOCHS_10PC'))
    p.add_argument('--start', action='append', default=[],
                   metavar='NAME=CHECKPOINT',
                   help='pretrained start for (4); NAME=none is random init '
                   '(always included)')
    p.add_argument('--only', nargs='+', choices=['nce', 'semisup'],
                   default=['nce', 'semisup'])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--docs-out', default=None)
    args = p.parse_args()
    quick = args.quick
    defaults = dict(train_size=2000 if quick else 10000,
                    test_size=2000 if quick else 10000,
                    epochs=3 if quick else 12,
                    ms=[1, 64, 512] if quick else [1, 16, 256, 4096],
                    ft_epochs=[10, 2] if quick else [100, 30])
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    mode = 'quick' if quick else 'full'
    if args.work_dir is None:
        args.work_dir = osp.join(ROOT, f'work_dirs/claims_benchmark_{mode}')
    if args.docs_out is None:
        args.docs_out = osp.join(ROOT, f'docs/benchmarks_claims_{mode}.md')
    args.starts = parse_starts(p, args.start, {'random init': 'none'})
    return args


def npid_config(args, m):
    """NPID with m noise samples (``m=None``: the full softmax)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, NPID_CFG))
    cfg.model.bank_size = args.train_size
    if m is None:
        cfg.model.head.loss_mode = 'softmax'
    else:
        cfg.model.head.num_negatives = m
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = args.data_root
    cfg.train_dataloader.dataset.indices = args.train_size
    cfg.test_dataloader.dataset.indices = args.test_size
    cfg.val_dataloader.dataset.indices = args.test_size
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=args.epochs,
                         val_interval=args.epochs)
    lr = cfg.optim_wrapper.optimizer.lr
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=args.epochs, by_epoch=True,
             begin=0, end=args.epochs, eta_min=lr * 0.01)
    ]
    cfg.randomness = dict(seed=args.seed)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=1)
    return cfg


def nce_sweep(args, results, save):
    from mm_instdisc.apis import (build_knn_dataloaders, extract_features,
                                  knn_evaluate, load_model)
    rows = results.setdefault('nce', {})
    for m in list(args.ms) + [None]:
        name = 'softmax' if m is None else f'm={m}'
        cfg = npid_config(args, m)
        wd = osp.join(args.work_dir, 'nce', name.replace('=', ''))
        ckpt, seconds = train_run(
            f'NPID {name}', cfg, wd, args.epochs, args.threads,
            f' on {args.train_size} images')
        model = load_model(copy.deepcopy(cfg), ckpt)
        tr, te = build_knn_dataloaders(cfg, batch_size=512)
        ref = extract_features(model, tr, 'embed', desc=f'{name} train')
        qry = extract_features(model, te, 'embed', desc=f'{name} test')
        acc = knn_evaluate(ref[0], ref[1], qry[0], qry[1], ks=(20, 200))
        rows[name] = dict(m=m, knn_k20=acc[20][1], knn_k200=acc[200][1],
                          seconds=seconds)
        print(f'[nce {name}] {rows[name]}', flush=True)
        save()


def semisup(args, results, save):
    from mmengine.config import Config
    rows = results.setdefault('semisup', {})
    for start, ckpt in args.starts.items():
        for frac, epochs in zip(('1%', '10%'), args.ft_epochs):
            cfg = Config.fromfile(osp.join(ROOT, FT_CFGS[frac]))
            if ckpt == 'none':
                cfg.model.backbone.init_cfg = None
            else:
                cfg.model.backbone.init_cfg.checkpoint = osp.abspath(ckpt)
            cfg.train_dataloader.dataset.dataset.data_root = args.data_root
            for loader in (cfg.val_dataloader, cfg.test_dataloader):
                loader.dataset.data_root = args.data_root
                loader.dataset.indices = args.test_size
            cfg.train_dataloader.dataset.seed = args.seed
            cfg.train_cfg = dict(type='EpochBasedTrainLoop',
                                 max_epochs=epochs, val_interval=epochs)
            cfg.param_scheduler = [
                dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True,
                     begin=0, end=epochs)
            ]
            cfg.randomness = dict(seed=args.seed)
            cfg.default_hooks.checkpoint = dict(
                type='CheckpointHook', interval=1, max_keep_ckpts=1)
            key = f'{start} / {frac}'
            wd = osp.join(args.work_dir, 'semisup',
                          start.replace(' ', '_').replace('/', '_'),
                          frac.rstrip('%') + 'pc')
            _, seconds = train_run(f'fine-tune {key}', cfg, wd, epochs,
                                   args.threads, f' from {ckpt}')
            metrics = last_metrics(wd, 'accuracy/top1')
            if metrics is None:
                raise RuntimeError(f'[{key}] no accuracy logged in {wd}')
            rows[key] = dict(start=start, checkpoint=ckpt, fraction=frac,
                             epochs=epochs, top1=metrics['accuracy/top1'],
                             seconds=seconds)
            print(f'[semisup {key}] {rows[key]}', flush=True)
            save()


def plots(results, out_dir, args):
    stem = osp.splitext(osp.basename(args.docs_out))[0]
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    files = []
    nce = results.get('nce', {})
    pts = sorted((r['m'], r['knn_k200']) for r in nce.values() if r['m'])
    if pts:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([m for m, _ in pts], [a for _, a in pts], 'o-',
                label='NCE, m noise samples')
        if 'softmax' in nce:
            ax.axhline(nce['softmax']['knn_k200'], ls='--', color='gray',
                       label='full non-parametric softmax')
        ax.set(xscale='log', xlabel='m', ylabel='kNN top-1 (%), k=200',
               title=f'NPID, {args.train_size} images, {args.epochs} epochs')
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'{stem}_nce_vs_m.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    semi = results.get('semisup', {})
    if semi:
        starts = list(dict.fromkeys(r['start'] for r in semi.values()))
        fig, ax = plt.subplots(figsize=(6, 3.5))
        width = 0.8 / 2
        for j, frac in enumerate(('1%', '10%')):
            vals = [semi.get(f'{s} / {frac}', {}).get('top1', 0)
                    for s in starts]
            ax.bar([i + j * width for i in range(len(starts))], vals, width,
                   label=f'{frac} labels')
        ax.set_xticks([i + width / 2 for i in range(len(starts))])
        ax.set_xticklabels(starts, fontsize=8)
        ax.set(ylabel='top-1 (%)', title='Semi-supervised fine-tuning')
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'{stem}_semisup.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    return files


def report(results, args, pngs):
    lines = [f'# Claims benchmark ({"quick" if args.quick else "full"} '
             'mode, measured)', '',
             f'`python tools/benchmarks/claims_benchmark.py'
             f'{" --quick" if args.quick else ""}` (seed {args.seed}, '
             f'{args.threads} thread(s) per training). Starts pretrained '
             'with labels (supervised, Exemplar) saw the labels of their '
             'whole pretraining set, so only label-free starts are '
             'semi-supervised in the strict sense.', '']
    nce = results.get('nce')
    if nce:
        lines += [f'## NPID: NCE with m noise samples vs the full softmax '
                  f'({args.train_size} images, {args.epochs} epochs)', '',
                  '| loss | kNN top-1 k=20 | kNN top-1 k=200 | wall time |',
                  '|---|---|---|---|']
        lines += [f"| {name} | {r['knn_k20']:.2f} | {r['knn_k200']:.2f} | "
                  f"{r['seconds'] / 60:.1f} min |" for name, r in nce.items()]
        lines.append('')
    semi = results.get('semisup')
    if semi:
        lines += ['## Semi-supervised fine-tuning (class-balanced subsets, '
                  f'seed {args.seed}; top-1 on {args.test_size} test images)',
                  '', '| start | labels | epochs | top-1 | wall time |',
                  '|---|---|---|---|---|']
        lines += [f"| {r['start']} (`{r['checkpoint']}`) | {r['fraction']} | "
                  f"{r['epochs']} | {r['top1']:.2f} | "
                  f"{r['seconds'] / 60:.1f} min |" for r in semi.values()]
        lines.append('')
    lines += [f'![{osp.basename(p)}]({osp.relpath(p, osp.dirname(args.docs_out))})'
              for p in pngs]
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    os.makedirs(args.work_dir, exist_ok=True)
    res_path = osp.join(args.work_dir, 'results.json')
    results = {}
    if osp.exists(res_path):
        with open(res_path) as f:
            results = json.load(f)

    def save():
        with open(res_path, 'w') as f:
            json.dump(results, f, indent=2)

    t = time.time()
    if 'nce' in args.only:
        nce_sweep(args, results, save)
    if 'semisup' in args.only:
        semisup(args, results, save)
    out_dir = osp.dirname(osp.abspath(args.docs_out))
    os.makedirs(out_dir, exist_ok=True)
    text = report(results, args, plots(results, out_dir, args))
    with open(args.docs_out, 'w') as f:
        f.write(text)
    print(text)
    print(f'wrote {args.docs_out} ({(time.time() - t) / 60:.1f} min)')


if __name__ == '__main__':
    main()
