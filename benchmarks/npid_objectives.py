"""NPID objectives side by side on the setting of the NPID objective issue.

    python benchmarks/npid_objectives.py                       # all runs, 3 seeds
    python benchmarks/npid_objectives.py --runs nce-once --seeds 0 --curves
    python benchmarks/npid_objectives.py --report-only         # rewrite the docs

Setting (the mmselfsup 1.0.0 NPID comparison): the first 10,000 Fashion-MNIST
training images zero-padded 28 -> 32 and repeated to 3 channels; per-sample
pipeline RandomResizedCrop(32, scale 0.2-1), RandomGrayscale(0.2),
ColorJitter(0.4, 0.4, 0.4, 0.4), RandomFlip(0.5) (grayscale, saturation and hue
are the identity on a grey image, so they are applied as such); mmpretrain
ResNet-18 with stem/base width 16 and the ImageNet stem, BN,
zero_init_residual=False; neck linear to 128 + L2 norm; bank of 10,000 rows,
random-normal then normalised, update v <- normalise(0.5 v + 0.5 f); SGD lr
0.03, momentum 0.9, weight decay 1e-4, constant lr, batch 128, drop_last, 5
epochs; one thread. Read-out: weighted kNN (cosine, k = 200, tau = 0.07) of the
global-average-pooled last stage; the 10k training images (un-augmented) are the
reference, the first 10k test images the queries.

The model is the registered ``NPID`` (its head's loss an ``NPIDLoss``) built from the
registry and trained by a plain loop (``model.loss``, SGD step,
``model.flush_bank_update``), so every mode goes through the code a config
uses. ``--curves`` also records per-iteration diagnostics: log Z in use, the
exact log of the mean partition function over the batch (one (B, N) product
against the whole bank), pos/neg h, the similarity of a feature to its own bank
row, the bank's mean-row norm.

Results are cached per (run, seed) in ``--work-dir``/results.json (finished runs
are not redone); the report goes to benchmarks/reports/npid.md (section between
the ``npid-objectives`` markers) and the curves of ``--curves`` runs to
npid_nce_collapse.png beside it.
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.lib import ROOT

# name -> NPIDLoss settings (and a one-line description for the report)
RUNS = {
    'nce-once': (dict(mode='nce', z_mode='once'),
                 'NCE, Z once from the first batch (paper / official code)'),
    'nce-once-warmup': (dict(mode='nce', z_mode='once', z_warmup=78),
                        'NCE, Z re-estimated per batch for 1 epoch (78 steps), '
                        'then frozen'),
    'nce-ema': (dict(mode='nce', z_mode='ema'),
                'NCE, Z as an EMA (0.99)'),
    'nce-batch': (dict(mode='nce', z_mode='batch'),
                  'NCE, one Z re-estimated on every batch'),
    'nce-sample': (dict(mode='nce', z_mode='sample'),
                   'NCE, Z_i estimated per sample from its own noise rows '
                   '(eq. 8 as written; our default)'),
    'sampled-softmax': (dict(mode='sampled_softmax'),
                        'sampled softmax over [positive, 4096 negatives] '
                        '(mmselfsup\'s objective, positive excluded; shipped)'),
    'softmax': (dict(mode='softmax'),
                'full softmax over the bank (the paper\'s objective; shipped)'),
}
REFERENCE = {'mmselfsup 1.0.0 NPID (issue, seeds 0/1)': [71.55, 70.73]}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', nargs='+', default=list(RUNS),
                   choices=list(RUNS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--num-train', type=int, default=10000)
    p.add_argument('--num-negatives', type=int, default=4096)
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--bank-init', choices=['random', 'forward'],
                   default='forward',
                   help='forward (our configs) or random (the issue setting, '
                   'run with --tag @random-bank)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--curves', action='store_true',
                   help='record per-iteration diagnostics (slower)')
    p.add_argument('--tag', default='',
                   help="suffix of the result key for variants of a run, "
                   "starting with '@' (e.g. @forward-init); not in the table")
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--work-dir', default=osp.join(ROOT,
                                                  'work_dirs/npid_objectives'))
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--doc', default=osp.join(ROOT, 'benchmarks/reports/npid.md'))
    return p.parse_args()


# ----------------------------------------------------------------- data
def load_split(root, split, limit):
    from mm_instdisc.datasets import read_idx
    prefix = 'train' if split == 'train' else 't10k'

    def find(stem):
        for name in (stem + '.gz', stem):
            if osp.isfile(osp.join(root, name)):
                return osp.join(root, name)
        raise FileNotFoundError(f'{stem}[.gz] not found in {root}: run '
                                'bash tools/setup.sh')
    imgs = read_idx(find(f'{prefix}-images-idx3-ubyte'))[:limit]
    labels = read_idx(find(f'{prefix}-labels-idx1-ubyte'))[:limit]
    x = torch.from_numpy(np.pad(imgs, ((0, 0), (2, 2), (2, 2))).copy())
    return x[:, None], torch.from_numpy(labels.astype(np.int64))  # (N,1,32,32)


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def normalise(x_uint8_1ch):
    return (x_uint8_1ch.float().expand(-1, 3, -1, -1) - MEAN) / STD


class AugmentedSet(torch.utils.data.Dataset):
    """The per-sample NPID pipeline on (1, 32, 32) uint8 tensors."""

    def __init__(self, images):
        from torchvision.transforms import v2
        self.images = images
        self.t = v2.Compose([
            v2.RandomResizedCrop(32, scale=(0.2, 1.0), antialias=True),
            # grayscale/saturation/hue: identity on a grey image
            v2.ColorJitter(brightness=0.4, contrast=0.4),
            v2.RandomHorizontalFlip(0.5),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.t(self.images[i]), i


# ----------------------------------------------------------------- model
def build_model(head, num_train, seed):
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    torch.manual_seed(seed)
    return MODELS.build(dict(
        type='NPID', bank_size=num_train, feat_dim=128, bank_momentum=0.5,
        backbone=dict(type='ResNet', depth=18, in_channels=3, stem_channels=16,
                      base_channels=16, zero_init_residual=False),
        neck=dict(type='LinearNeck', in_channels=128, out_channels=128,
                  gap_dim=2, norm_cfg=None),
        head=dict(type='LossHead', loss=dict(type='NPIDLoss', **head))))


@torch.no_grad()
def pooled(model, x, bs=500):
    model.eval()
    out = []
    for i in range(0, len(x), bs):
        f = model.backbone(normalise(x[i:i + bs]))[-1]
        out.append(F.normalize(f.mean((2, 3)), dim=1))
    return torch.cat(out)


def knn200(model, train, test):
    from mm_instdisc.modules import readout
    return readout(pooled(model, train[0]), train[1], pooled(model, test[0]),
                   test[1], ks=(200, ), probe=False,
                   num_classes=10)['knn_k200']


@torch.no_grad()
def forward_init(model, train_x, bs=500):
    model.eval()
    for i in range(0, len(train_x), bs):
        f = model.embed(normalise(train_x[i:i + bs]))
        model.memory_bank.fill(torch.arange(i, i + len(f)), f)


def train_one(args, name, seed, train, test):
    from mmpretrain.structures import DataSample
    head = dict(RUNS[name][0], num_negatives=args.num_negatives,
                temperature=args.temperature)
    model = build_model(head, args.num_train, seed)
    if args.bank_init == 'forward':
        forward_init(model, train[0])
    loss_mod = model.head.loss_module
    loss_mod.generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        AugmentedSet(train[0]), batch_size=128, shuffle=True, drop_last=True,
        generator=g, num_workers=0)
    torch.manual_seed(seed)
    curves, losses = [], []
    step_time, t0 = 0.0, time.time()
    for epoch in range(args.epochs):
        model.train()
        for x, idx in loader:
            samples = [DataSample(metainfo=dict(sample_idx=int(i)))
                       for i in idx]
            x = normalise(x)
            t = time.perf_counter()
            out = model.loss([x], samples)
            opt.zero_grad()
            out['loss'].backward()
            opt.step()
            if args.curves:
                curves.append(diagnostics(model, x, idx, out))
            model.flush_bank_update()
            step_time += time.perf_counter() - t
            losses.append(out['loss'].item())
        print(f'[{name} seed {seed}] epoch {epoch + 1}/{args.epochs} loss '
              f'{statistics.mean(losses[-50:]):.3f} '
              f'({time.time() - t0:.0f} s)', flush=True)
    wall = time.time() - t0
    n_img = len(losses) * 128
    return dict(knn=knn200(model, train, test), wall_s=wall,
                step_img_s=n_img / step_time, e2e_img_s=n_img / wall,
                loss_first=statistics.mean(losses[:20]),
                loss_last=statistics.mean(losses[-20:]), curves=curves)


@torch.no_grad()
def diagnostics(model, x, idx, out):
    bank = model.memory_bank.bank
    loss_mod = model.head.loss_module
    stats = {k: float(v) for k, v in loss_mod.last_stats.items()}
    feats = model._pending[1][:len(idx)]
    logits = feats @ bank.t() / loss_mod.temperature
    true_log_z = float(torch.logsumexp(logits, 1).mean())  # mean log Z_i
    stats.update(true_log_z=true_log_z, loss=float(out['loss']),
                 pos_sim=float(out['pos_sim']),
                 bank_mean_norm=float(bank.mean(0).norm()),
                 feat_mean_norm=float(feats.mean(0).norm()))
    return stats


# ----------------------------------------------------------------- report
def load_results(path):
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def mean_std(values):
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}'


def delta(results, keys):
    """Mean over runs of (kNN - the random-init kNN of the same seed)."""
    return statistics.mean(
        results[k]['knn'] - results[f'random-init/{k.split("/")[1]}']['knn']
        for k in keys)


def write_report(args, results):
    rows = []
    base = [results[k]['knn'] for k in sorted(results)
            if k.startswith('random-init/')]
    lines = [
        '<!-- npid-objectives:start (written by benchmarks/npid_objectives.py) -->',
        '## NPID objectives on the mmselfsup comparison setting',
        '',
        'Command: `.venv/bin/python benchmarks/npid_objectives.py` (resumable; '
        '`--report-only` rewrites this section). Setting: first 10,000 Fashion-MNIST '
        'training images padded to 32x32x3, per-sample pipeline RandomResizedCrop(32, 0.2-1) + '
        'ColorJitter(0.4, 0.4) + flip, mmpretrain ResNet-18 (stem/base 16, ImageNet stem), '
        'linear neck to 128 + L2 norm, bank of 10,000 rows initialised by a forward pass '
        '(our configs; variants below), bank momentum 0.5, '
        f'm = {args.num_negatives}, tau = {args.temperature}, SGD lr 0.03 (constant), '
        'momentum 0.9, wd 1e-4, batch 128, 5 epochs (10,000 x 5 images), 1 thread on the '
        '2-core CPU machine. Read-out: weighted kNN top-1 (k = 200, tau = 0.07) of the pooled '
        'backbone on the first 10,000 test images against the 10,000 training images. '
        'Mean +- std over the seeds listed; img/s of the train step (forward, backward, SGD, '
        'bank update; data loading excluded) and end to end.',
        '',
        '"vs random init" is the mean over seeds of (kNN - the same seed\'s random-init kNN).',
        '',
        '| run | seeds | kNN top-1 k=200 | vs random init | loss first -> last | '
        'train_step img/s | end-to-end img/s | wall per run |',
        '|---|---|---|---|---|---|---|---|',
    ]
    if base:
        lines.append(f'| random-init network | {len(base)} | {mean_std(base)} | - | - | - | - | - |')
    for name in RUNS:
        keys = sorted(k for k in results if k.split('/')[0] == name)
        if not keys:
            continue
        r = [results[k] for k in keys]
        accs = [x['knn'] for x in r]
        lines.append(
            f'| {name}: {RUNS[name][1]} | {len(r)} | {mean_std(accs)} | '
            f'{delta(results, keys):+.2f} | '
            f'{statistics.mean(x["loss_first"] for x in r):.2f} -> '
            f'{statistics.mean(x["loss_last"] for x in r):.2f} | '
            f'{statistics.mean(x["step_img_s"] for x in r):.0f} | '
            f'{statistics.mean(x["e2e_img_s"] for x in r):.0f} | '
            f'{statistics.mean(x["wall_s"] for x in r) / 60:.1f} min |')
        rows.append((name, statistics.mean(accs)))
    for name, vals in REFERENCE.items():
        lines.append(f'| {name} | 2 | {mean_std(vals)} | (its random init: 65.65 / 67.32) '
                     '| - | - | - | - |')
    variants = sorted({k.split('/')[0] for k in results if '@' in k})
    if variants:
        lines += ['', 'Variants (investigation, seed 0 unless stated; `--tag`): '
                  '`@random-bank` = bank of random unit rows, as in the issue setting and '
                  'the official code; `@fwd` = the forward-initialised runs of seed 0 repeated with '
                  'curves (same numbers as above); `-tau0.1` = tau 0.1 instead of 0.07. '
                  '"vs random init" is against the random-init network of the same seed.', '',
                  '| run | seeds | kNN top-1 k=200 | vs random init | loss first -> last |',
                  '|---|---|---|---|---|']
        for v in variants:
            keys = [k for k in sorted(results) if k.split('/')[0] == v]
            r = [results[k] for k in keys]
            accs = [x['knn'] for x in r]
            lines.append(
                f'| {v} | {len(r)} | {mean_std(accs)} | '
                f'{delta(results, keys):+.2f} | '
                f'{statistics.mean(x["loss_first"] for x in r):.2f} -> '
                f'{statistics.mean(x["loss_last"] for x in r):.2f} |')
    lines += ['', '<!-- npid-objectives:end -->']
    text = open(args.doc).read() if osp.exists(args.doc) else ''
    start = text.find('<!-- npid-objectives:start')
    end = text.find('<!-- npid-objectives:end -->')
    block = '\n'.join(lines)
    if start >= 0 and end >= 0:
        text = text[:start] + block + text[end + len('<!-- npid-objectives:end -->'):]
    else:
        text = text.rstrip('\n') + '\n\n' + block + '\n'
    with open(args.doc, 'w') as f:
        f.write(text)
    print(block)


def plot_curves(args, results):
    curves = {k: v['curves'] for k, v in results.items() if v.get('curves')}
    if not curves:
        return
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [('log_z', 'log Z in use (NCE)'),
              ('true_log_z', 'exact mean log Z_i over the bank'),
              ('neg_h', 'mean h of noise pairs'), ('pos_sim', 'cos(f_i, v_i)'),
              ('bank_mean_norm', 'bank mean-row norm'), ('loss', 'loss')]
    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    colours = {name: f'C{i}' for i, name in enumerate(RUNS)}
    for ax, (key, title) in zip(axes.flat, panels):
        for name, c in sorted(curves.items()):
            run = name.split('@')[0].split('/')[0]
            ys = [s.get(key, math.nan) for s in c]
            style = (':' if 'tau' in name else '-' if 'random-bank' in name
                     else '--')
            ax.plot(ys, label=name, lw=0.9, color=colours.get(run, 'k'),
                    ls=style)
        ax.set_title(title)
        ax.set_xlabel('iteration')
        if key == 'loss':
            ax.set_yscale('log')
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=5, fontsize=8,
               title='solid: random bank; dashed: forward-initialised bank; '
               'dotted: random bank, tau 0.1')
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    out = osp.join(osp.dirname(osp.abspath(args.doc)), 'npid_nce_collapse.png')
    fig.savefig(out, dpi=80)
    print(f'wrote {out}')


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.join(args.work_dir, 'results.json')
    results = load_results(path)
    if not args.report_only:
        train = load_split(args.data_root, 'train', args.num_train)
        test = load_split(args.data_root, 'test', 10000)
        for seed in args.seeds:
            key = f'random-init/{seed}'
            if key not in results:
                model = build_model(RUNS['softmax'][0], args.num_train, seed)
                results[key] = dict(knn=knn200(model, train, test))
                print(f'[random init seed {seed}] kNN {results[key]["knn"]:.2f}')
            for name in args.runs:
                key = f'{name}{args.tag}/{seed}'
                if key in results and (results[key].get('curves') or
                                       not args.curves):
                    print(f'[{key}] cached: kNN {results[key]["knn"]:.2f}')
                    continue
                results[key] = train_one(args, name, seed, train, test)
                print(f'[{key}] kNN {results[key]["knn"]:.2f} '
                      f'(random init {results[f"random-init/{seed}"]["knn"]:.2f})',
                      flush=True)
                results = {**load_results(path), **results}
                with open(path, 'w') as f:
                    json.dump(results, f)
    plot_curves(args, results)
    write_report(args, results)


if __name__ == '__main__':
    main()
