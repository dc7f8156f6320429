"""The transfer issue's four claims, measured at CPU scale on Fashion-MNIST
and the composed Fashion-MNIST COCO set; writes ``benchmarks/reports/claims.md``.

    python benchmarks/claims_benchmark.py [--quick] [--threads 1]
        [--only pretrain param nce det semisup] [--start NAME=CHECKPOINT ...]
        [--work-dir DIR] [--docs-out FILE]
    python benchmarks/claims_benchmark.py --recipes 0 1 2

pretrain  The starts of (1), (3) and (4), each pretrained for
          ``--pretrain-epochs`` on the first ``--train-size`` training
          images (batch 128, 4096 negatives / queue (at most half the images), cosine lr, same seed,
          same ResNet-18 at width 16) with the configs and overrides of the
          per-method benchmarks: NPID, MoCo v2 and AdCo as in
          adco_benchmark.py, Exemplar-v2 and supervised cross-entropy as in
          exemplar_benchmark.py. ``--start NAME=CHECKPOINT`` adds a start;
          random init is always one.
(1) param NPID's non-parametric softmax (memory bank, no weights) against a
          parametric instance softmax (an N-way classifier with one learned
          weight vector per image, configs/npid/parametric-softmax_*), both
          trained for ``--epochs`` on the same images with the same backbone,
          neck, data and optimiser. Read-outs on the 128-d embedding and on
          the backbone's pooled features: weighted kNN (tau 0.07, k = 20 and
          200; test images against the pretraining images) and a linear
          probe (mm_instdisc.modules.readout). Baselines: raw pixels, the
          random-init network, the supervised start.
(2) nce   NPID with NCE and m noise samples for each m in ``--ms`` against
          the full softmax (kNN of the embedding). Claim: accuracy rises
          with m and approaches the full softmax.
(3) det   Mask R-CNN (ResNet-18 w16 FPN) fine-tuned ``--det-epochs`` on the
          composed Fashion-MNIST COCO set from every start, COCO box / mask
          AP (benchmarks.lib.finetune_detector; the set is generated if
          missing, items disjoint from the pretraining images).
(4) semisup  Every start fine-tuned end to end with 1% and with 10% of the
          labels (class-balanced subsets, seed ``--seed``), top-1 on the
          test images.

Every training runs through tools/train.py or tools/det_train.py; a finished
run is not rerun (its recorded wall time is reused), an interrupted one
resumes. Results go to ``<work-dir>/results_<section>.json``, one file per
section, so sections can run side by side in separate invocations once the
starts are pretrained (``--only pretrain`` first). The report (tables with
epochs, seed and wall time, a claims summary, PNG plots) is written from
every section measured so far.

``--recipes SEED ...`` reruns (3) and (4) with the 15-minute recipes as
starts (``recipes_benchmark.py``; ResNet-18 w32s2 pretrained on all 60,000
training images): for each seed s, the NPID, MoCo v2, AdCo and Exemplar-v2
recipes and the pretext tasks' recipes (rotation, relative location,
jigsaw, masked intensity; ``--recipe-starts`` picks a subset) of seed s and
random init, each fine-tuned with seed s; with the pretext tasks, claim (5)
compares NPID with them (the NPID paper's comparison); the w32s2
detection and fine-tuning configs; 1% of the labels for the config's 100
epochs, 10% for 10. Detection runs and 1%-label fine-tunings that the
recipes benchmark already made (same checkpoint, config and seed) are
reused from ``--recipes-dir``; writes benchmarks/reports/claims_recipes.md.

Full mode (default; a few hours on 2 cores, less with two invocations side
by side): 10,000 images, 6 epochs for (1) and (2), m in {1, 16, 256, 4096},
starts pretrained 20 epochs, detection 3 epochs on 2,000 images, fine-tuning
50 / 10 epochs; writes benchmarks/reports/claims.md. ``--quick`` (about 15 minutes):
2,000 images, 3 epochs, m in {1, 64, 512}, starts pretrained 3 epochs,
detection 2 epochs on a 300-image set, fine-tuning 10 / 2 epochs; writes
benchmarks/reports/claims_quick.md.
"""
import argparse
import copy
import json
import os
import os.path as osp
import shlex
import sys
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

import torch

from benchmarks.lib import (DET_CONFIG, DET_METRICS, ROOT, ensure_fmnist_coco,
                            finetune_classifier, finetune_detector,
                            parse_starts, setup_mmpretrain, train_run)
from benchmarks.lib.method_runs import (ADCO_CONFIGS, EXEMPLAR_CONFIGS,
                                        adco_run_config, exemplar_run_config)
from benchmarks.lib.recipes import (FT_RESNET, PRETEXT, RECIPE_DET_CONFIG,
                                    detection_work_dir, finetune_work_dir,
                                    recipe_checkpoint)

SECTIONS = ('pretrain', 'param', 'nce', 'det', 'semisup')
NPID_CFG = 'configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py'
PARAM_CFG = ('configs/npid/parametric-softmax_resnet18-w16_1xb128-steplr-10e_'
             'fashion-mnist.py')
FT_CFGS = {
    '1%': 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb64-ft-coslr-100e_fashion-mnist-1pc.py',
    '10%': 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb128-ft-coslr-30e_fashion-mnist-10pc.py',
}
# start -> (the per-method benchmark whose run it is, its run name)
PRETRAINED = {
    'npid': ('adco', 'npid'),
    'mocov2': ('adco', 'mocov2'),
    'adco': ('adco', 'adco'),
    'exemplar-v2': ('exemplar', 'exemplar'),
    'supervised': ('exemplar', 'supervised'),
}
UNSUPERVISED = ('npid', 'mocov2', 'adco')
# the starts' runs with a queue of keys (mmpretrain's MoCo needs its length
# to be a multiple of the batch)
QUEUED = ('mocov2', 'exemplar')
# --recipes: start -> its recipe in recipes_benchmark.py, and the configs
RECIPE_STARTS = {'npid': 'npid', 'mocov2': 'mocov2', 'adco': 'adco',
                 'exemplar-v2': 'exemplar', 'rotation': 'rotation',
                 'relative location': 'relloc', 'jigsaw': 'jigsaw',
                 'masked intensity': 'maskint'}
# the classic pretext tasks among them (issue 17): NPID's paper compares
# instance discrimination with these
PRETEXT_STARTS = tuple(s for s, m in RECIPE_STARTS.items() if m in PRETEXT)
RECIPES_FT_CFGS = {
    '1%': FT_RESNET[0],
    '10%': 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w32s2_1xb128-ft-coslr-30e_fashion-mnist-10pc.py',
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--only', nargs='+', choices=SECTIONS, default=SECTIONS)
    p.add_argument('--work-dir', default=None)
    p.add_argument('--docs-out', default=None)
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--det-data-root', default=None,
                   help='composed COCO set (generated if missing)')
    p.add_argument('--train-size', type=int, default=None)
    p.add_argument('--test-size', type=int, default=None)
    p.add_argument('--epochs', type=int, default=None,
                   help='epochs of the NPID runs of (1) and (2)')
    p.add_argument('--ms', type=int, nargs='+', default=None)
    p.add_argument('--pretrain-epochs', type=int, default=None)
    p.add_argument('--det-epochs', type=int, default=None)
    p.add_argument('--det-seeds', type=int, nargs='+', default=None,
                   help='detection fine-tuning seeds (default: 0); the table '
                   'reports the mean and each seed')
    p.add_argument('--ft-epochs', type=int, nargs=2, default=None,
                   metavar=('EPOCHS_1PC', 'EPOCHS_10PC'))
    p.add_argument('--probe-epochs', type=int, default=10,
                   help='L-BFGS rounds of the linear probes')
    p.add_argument('--start', action='append', default=[],
                   metavar='NAME=CHECKPOINT',
                   help='an extra start for (3) and (4); NAME=none is random '
                   'init')
    p.add_argument('--no-pretrain-starts', action='store_true',
                   help='(3) and (4) from random init and --start only')
    p.add_argument('--recipes', type=int, nargs='+', default=None,
                   metavar='SEED',
                   help='(3) and (4) from the 15-minute recipes of these '
                   'seeds (recipes_benchmark.py) instead of pretraining '
                   'starts')
    p.add_argument('--recipe-starts', nargs='+', choices=RECIPE_STARTS,
                   default=list(RECIPE_STARTS), metavar='START',
                   help='--recipes: the recipes to start from (default: all '
                   f'of {list(RECIPE_STARTS)}; random init always)')
    p.add_argument('--recipes-dir',
                   default=osp.join(ROOT, 'work_dirs/recipes'),
                   help="recipes_benchmark.py's work dir (--recipes)")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=None,
                   help='pretraining and fine-tuning seed (default: 0)')
    args = p.parse_args()
    quick = args.quick
    if args.recipes is not None:
        return recipes_args(p, args)
    args.seed = 0 if args.seed is None else args.seed
    args.det_seeds = args.det_seeds or [0]
    defaults = dict(train_size=2000 if quick else 10000,
                    test_size=2000 if quick else 10000,
                    epochs=3 if quick else 6,
                    ms=[1, 64, 512] if quick else [1, 16, 256, 4096],
                    pretrain_epochs=3 if quick else 20,
                    det_epochs=2 if quick else 3,
                    ft_epochs=[10, 2] if quick else [50, 10],
                    det_data_root=osp.join(
                        ROOT, 'data/fmnist_coco_quick' if quick
                        else 'data/fmnist_coco'))
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.det_images = (300, 100) if quick else (2000, 500)
    mode = 'quick' if quick else 'full'
    if args.work_dir is None:
        args.work_dir = osp.join(ROOT, f'work_dirs/claims_benchmark_{mode}')
    if args.docs_out is None:
        args.docs_out = osp.join(ROOT, 'benchmarks/reports/claims_quick.md'
                                 if quick else 'benchmarks/reports/claims.md')
    args.starts = parse_starts(p, args.start, {'random init': 'none'})
    args.ft_seeds = [args.seed]
    args.det_config = DET_CONFIG
    args.ft_cfgs = FT_CFGS
    args.network = 'ResNet-18 w16 (CIFAR stem)'
    clash = set(args.starts) & set(PRETRAINED)
    if clash and not args.no_pretrain_starts:
        p.error(f'--start {sorted(clash)}: these names are the pretrained '
                'starts; pick another name or pass --no-pretrain-starts')
    return args


def slug(name):
    return name.replace(' ', '_').replace('/', '_').replace('=', '')


def fashion_overrides(cfg, args, epochs):
    """The benchmark's data subset, cosine schedule, seed and checkpointing."""
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = args.data_root
    cfg.train_dataloader.dataset.indices = args.train_size
    cfg.test_dataloader.dataset.indices = args.test_size
    cfg.val_dataloader.dataset.indices = args.test_size
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                         val_interval=epochs)
    lr = cfg.optim_wrapper.optimizer.lr
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True,
             begin=0, end=epochs, eta_min=lr * 0.01)
    ]
    cfg.randomness = dict(seed=args.seed)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=1)
    return cfg


def npid_config(args, m):
    """NPID with m noise samples (``m=None``: the full softmax)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, NPID_CFG))
    cfg.model.bank_size = args.train_size
    if m is None:
        cfg.model.head.loss.mode = 'softmax'
    else:
        cfg.model.head.loss.num_negatives = m
    return fashion_overrides(cfg, args, args.epochs)


def parametric_config(args):
    """The parametric instance softmax: one learned weight per image."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, PARAM_CFG))
    cfg.model.num_instances = args.train_size
    return fashion_overrides(cfg, args, args.epochs)


def negatives(args):
    """Negatives / queue of the starts: 4096, at most half the pretraining
    images (NPID's m noise rows must come from the other N - 1 rows),
    rounded down to a multiple of the batch of 128 (mmpretrain's MoCo queue
    needs it): quick mode's 2,000 images get 896."""
    n = min(4096, args.train_size // 2)
    return n // 128 * 128 if n >= 128 else n


def pretrain_config(name, args):
    """A pretrained start's config: the per-method benchmark's run (the
    library's ``method_runs``) at this benchmark's sizes."""
    bench, run = PRETRAINED[name]
    common = dict(data_root=args.data_root, train_size=args.train_size,
                  epochs=args.pretrain_epochs, batch_size=128, seed=args.seed)
    queue = negatives(args)
    if run in QUEUED and queue % 128:
        raise ValueError(
            f'--train-size {args.train_size}: the {name} start keeps a queue '
            f'of {queue} keys (at most half the images), which must be a '
            'multiple of the batch of 128: use at least 256 images or leave '
            'the start out (--no-pretrain-starts)')
    if bench == 'adco':
        return adco_run_config(run, num_negatives=queue, **common)
    return exemplar_run_config(run, test_size=args.test_size,
                               queue_len=queue, **common)


def npid_run(args, m):
    """Train (or reuse) one NPID run of (1)/(2): (config, checkpoint, s)."""
    name = 'softmax' if m is None else f'm={m}'
    cfg = npid_config(args, m)
    ckpt, seconds = train_run(f'NPID {name}', cfg,
                              osp.join(args.work_dir, 'nce', slug(name)),
                              args.epochs, args.threads,
                              f' on {args.train_size} images')
    return cfg, ckpt, seconds


def starts(args, names):
    """{name: (checkpoint or 'none', pretraining row)} of (3) and (4): random
    init, the pretrained starts in ``names`` (trained now if they are not
    yet) and the ``--start`` ones."""
    out = {'random init': ('none', None)}
    for name in names:
        cfg = pretrain_config(name, args)
        ckpt, seconds = train_run(
            f'pretrain {name}', cfg,
            osp.join(args.work_dir, 'pretrain', slug(name)),
            args.pretrain_epochs, args.threads,
            f' on {args.train_size} images')
        out[name] = (ckpt, dict(
            config=pretrained_config_file(name), epochs=args.pretrain_epochs,
            images=args.train_size, seconds=seconds, checkpoint=ckpt))
    for name, ckpt in args.starts.items():
        out.setdefault(name, (ckpt, None))
    return out


def pretrained_config_file(name):
    bench, run = PRETRAINED[name]
    return (ADCO_CONFIGS if bench == 'adco' else EXEMPLAR_CONFIGS)[
        run.split('-')[0]]


def model_readouts(cfg, ckpt, loaders, args, name, features):
    from mm_instdisc.evaluation import extract_features, load_model
    from mm_instdisc.modules import readout
    model = load_model(copy.deepcopy(cfg), ckpt)
    row = {}
    for feature in features:
        tr = extract_features(model, loaders[0], feature,
                              desc=f'{name} {feature} train')
        te = extract_features(model, loaders[1], feature,
                              desc=f'{name} {feature} test')
        row[feature] = readout(*tr, *te, num_classes=10,
                               probe_epochs=args.probe_epochs, seed=args.seed)
    return row


def param_section(args, results, save, start_rows):
    """(1) non-parametric vs parametric instance softmax."""
    from mm_instdisc.evaluation import build_knn_dataloaders, pixel_features
    from mm_instdisc.modules import readout
    rows = results.setdefault('rows', {})
    npid_cfg, npid_ckpt, npid_s = npid_run(args, None)
    param_cfg = parametric_config(args)
    param_ckpt, param_s = train_run(
        'parametric softmax', param_cfg,
        osp.join(args.work_dir, 'param', 'parametric'), args.epochs,
        args.threads, f' on {args.train_size} images')
    loaders = build_knn_dataloaders(npid_cfg, batch_size=512)
    both = ('embed', 'backbone')
    todo = [('raw pixels', None, None, None, ()),
            ('random init', npid_cfg, 'none', None, both),
            ('non-parametric softmax (NPID)', npid_cfg, npid_ckpt, npid_s,
             both),
            ('parametric softmax', param_cfg, param_ckpt, param_s, both)]
    sup = start_rows.get('supervised')
    if sup:
        todo.append(('supervised', pretrain_config('supervised', args),
                     sup['checkpoint'], sup['seconds'], ('backbone',)))
    for name, cfg, ckpt, seconds, features in todo:
        if name in rows and rows[name].get('checkpoint') == ckpt:
            continue
        if cfg is None:
            px = pixel_features(loaders[0]), pixel_features(loaders[1])
            row = dict(pixels=readout(*px[0], *px[1], num_classes=10,
                                      probe_epochs=args.probe_epochs,
                                      seed=args.seed))
        else:
            torch.manual_seed(args.seed)
            row = model_readouts(cfg, ckpt, loaders, args, name, features)
        epochs = {'raw pixels': 0, 'random init': 0,
                  'supervised': args.pretrain_epochs}.get(name, args.epochs)
        row.update(checkpoint=ckpt, epochs=epochs, seconds=seconds)
        rows[name] = row
        print(f'[param {name}] {row}', flush=True)
        save()


def nce_section(args, results, save):
    """(2) NCE accuracy as m grows, against the full softmax."""
    from mm_instdisc.evaluation import (build_knn_dataloaders,
                                        extract_features, load_model)
    from mm_instdisc.modules import readout
    rows = results.setdefault('rows', {})
    for m in list(args.ms) + [None]:
        name = 'softmax' if m is None else f'm={m}'
        cfg, ckpt, seconds = npid_run(args, m)
        if name in rows and rows[name].get('seconds') == seconds:
            continue
        model = load_model(copy.deepcopy(cfg), ckpt)
        tr, te = build_knn_dataloaders(cfg, batch_size=512)
        ref = extract_features(model, tr, 'embed', desc=f'{name} train')
        qry = extract_features(model, te, 'embed', desc=f'{name} test')
        rows[name] = dict(m=m, **readout(*ref, *qry, probe=False),
                          epochs=args.epochs, seconds=seconds)
        print(f'[nce {name}] {rows[name]}', flush=True)
        save()


def seed_checkpoint(ckpt, seed):
    """A start's checkpoint for ``seed``: one for every seed, or (--recipes)
    {seed: checkpoint}."""
    return ckpt[seed] if isinstance(ckpt, dict) else ckpt


def det_section(args, results, save, start_ckpts):
    """(3) Mask R-CNN transfer from every start, once per ``--det-seeds``
    seed (seed 0 in ``det/<start>``, seed s in ``det/seed<s>/<start>``;
    --recipes: the recipes benchmark's detection runs, made or reused)."""
    root = args.det_data_root
    ensure_fmnist_coco(root, fmnist_root=args.data_root,
                       num_train=args.det_images[0],
                       num_val=args.det_images[1])
    sizes = []
    for split in ('train', 'val'):
        with open(osp.join(root, 'annotations',
                           f'instances_{split}.json')) as f:
            sizes.append(len(json.load(f)['images']))
    results['images'] = sizes
    rows = results.setdefault('rows', {})
    for name, ckpt in start_ckpts.items():
        runs = []
        for seed in args.det_seeds:
            if args.recipes is not None:
                work_dir = detection_work_dir(
                    args.recipes_dir, seed,
                    RECIPE_STARTS.get(name, 'random'))
            else:
                work_dir = osp.join(args.work_dir, 'det',
                                    f'seed{seed}' if seed else '', slug(name))
            runs.append(finetune_detector(
                slug(name), seed_checkpoint(ckpt, seed), work_dir,
                data_root=root, config=osp.join(ROOT, args.det_config),
                epochs=args.det_epochs, seed=seed, threads=args.threads))
        rows[name] = dict(
            checkpoint=[r['checkpoint'] for r in runs], epochs=args.det_epochs,
            seeds=args.det_seeds, seconds=sum(r['seconds'] for r in runs),
            **{k: sum(100 * r[k] for r in runs) / len(runs)
               for k in DET_METRICS},
            **{f'{k}/seeds': [100 * r[k] for r in runs]
               for k in DET_METRICS})
        print(f'[det {name}] {rows[name]}', flush=True)
        save()


def semisup_section(args, results, save, start_ckpts):
    """(4) fine-tuning with 1% and 10% of the labels from every start, once
    per seed (the labelled subset is drawn with the seed too)."""
    rows = results.setdefault('rows', {})
    for start, ckpt in start_ckpts.items():
        for frac, epochs in zip(('1%', '10%'), args.ft_epochs):
            key = f'{start} / {frac}'
            runs = []
            for seed in args.ft_seeds:
                # random init: the ResNet recipes share one random-init run
                method = RECIPE_STARTS.get(start, 'npid')
                if args.recipes is not None and epochs is None and frac == '1%':
                    # the recipes benchmark's own 1%-label fine-tuning
                    work_dir = finetune_work_dir(
                        args.recipes_dir, method, seed, start != 'random init')
                else:
                    work_dir = osp.join(
                        args.work_dir, 'semisup',
                        '' if args.recipes is None else f'seed{seed}',
                        slug(start), frac.rstrip('%') + 'pc')
                data = {} if args.recipes is not None else dict(
                    data_root=args.data_root, test_size=args.test_size)
                runs.append(finetune_classifier(
                    f'{key} seed {seed}', args.ft_cfgs[frac],
                    seed_checkpoint(ckpt, seed), work_dir, seed=seed,
                    threads=args.threads, epochs=epochs, **data))
            top1 = [r['top1'] for r in runs]
            rows[key] = dict(start=start, fraction=frac, seeds=args.ft_seeds,
                             checkpoint=[seed_checkpoint(ckpt, s)
                                         for s in args.ft_seeds],
                             epochs=runs[0]['epochs'], top1=sum(top1) / len(top1),
                             **{'top1/seeds': top1},
                             seconds=sum(r['seconds'] for r in runs))
            print(f'[semisup {key}] {rows[key]}', flush=True)
            save()


def seeds_cell(row, key, digits):
    """``row[key]`` (a mean over seeds), with +- std and each seed's value
    in brackets when there are several."""
    each = row.get(f'{key}/seeds', [])
    if len(each) < 2:
        return f'{row[key]:.{digits}f}'
    import statistics
    return (f'{row[key]:.{digits}f} +- {statistics.stdev(each):.{digits}f} ('
            + ' / '.join(f'{v:.{digits}f}' for v in each) + ')')


def fmt_time(seconds):
    return '-' if seconds is None else f'{seconds / 60:.1f} min'


def recipes_args(p, args):
    """The arguments of ``--recipes``: sections (3) and (4), the recipes of
    each seed as starts, the w32s2 configs."""
    if args.quick or args.start or args.no_pretrain_starts:
        p.error('--recipes takes its starts from --recipes-dir; it cannot be '
                'combined with --quick, --start or --no-pretrain-starts')
    if args.seed is not None or args.det_seeds is not None:
        p.error('--recipes SEED ...: every run of seed s pretrained and '
                'fine-tunes with s; --seed and --det-seeds do not apply')
    if list(args.only) == list(SECTIONS):
        args.only = ['det', 'semisup']
    other = [s for s in args.only if s not in ('det', 'semisup')]
    if other:
        p.error(f'--only {other}: --recipes measures the sections that '
                "depend on the starts, 'det' and 'semisup'")
    methods = [RECIPE_STARTS[n] for n in args.recipe_starts]
    missing = [recipe_checkpoint(args.recipes_dir, m, s)
               for s in args.recipes for m in methods
               if not osp.isfile(recipe_checkpoint(args.recipes_dir, m, s))]
    if missing:
        p.error(f'--recipes {args.recipes}: missing recipe checkpoints '
                f'{missing}; run benchmarks/recipes_benchmark.py '
                f'--methods {" ".join(dict.fromkeys(methods))} --seeds '
                f'{" ".join(map(str, args.recipes))} first, or leave those '
                'starts out with --recipe-starts')
    args.det_seeds = args.ft_seeds = list(args.recipes)
    args.test_size = args.test_size or 10000
    args.det_epochs = args.det_epochs or 3
    args.ft_epochs = args.ft_epochs or [None, 10]
    args.det_data_root = args.det_data_root or osp.join(ROOT,
                                                        'data/fmnist_coco')
    args.det_images = (2000, 500)
    args.det_config = RECIPE_DET_CONFIG
    args.ft_cfgs = RECIPES_FT_CFGS
    args.network = ('ResNet-18 w32s2 (CIFAR stem, width 32, stride-2 first '
                    'stage; the recipes\' network)')
    args.work_dir = args.work_dir or osp.join(
        ROOT, 'work_dirs/claims_benchmark_recipes')
    args.docs_out = args.docs_out or osp.join(
        ROOT, 'benchmarks/reports/claims_recipes.md')
    args.starts = {'random init': {s: 'none' for s in args.recipes}}
    for name in args.recipe_starts:
        args.starts[name] = {
            s: recipe_checkpoint(args.recipes_dir, RECIPE_STARTS[name], s)
            for s in args.recipes}
    return args


def verdicts(res, args):
    """(claim, what was measured, held?) for every claim measured."""
    out = []
    param = res.get('param', {}).get('rows', {})
    npid, par = (param.get('non-parametric softmax (NPID)'),
                 param.get('parametric softmax'))
    if npid and par:
        pairs = [(f'{feat} {key}', npid[feat][key], par[feat][key])
                 for feat in ('embed', 'backbone')
                 for key in ('knn_k200', 'linear')]
        wins = sum(a > b for _, a, b in pairs)
        rnd = param.get('random init')
        out.append((
            '(1) non-parametric softmax beats the parametric instance '
            'softmax (paper, CIFAR-10 kNN: 80.8 vs 63.0)',
            '; '.join(f'{k}: {a:.2f} vs {b:.2f}' for k, a, b in pairs)
            + (f" (random init: embed knn_k200 {rnd['embed']['knn_k200']:.2f}"
               f", linear {rnd['embed']['linear']:.2f})"
               if rnd and 'embed' in rnd else ''),
            {len(pairs): 'yes', 0: 'no'}.get(
                wins, f'partly ({wins} of {len(pairs)})')))
    nce = res.get('nce', {}).get('rows', {})
    ms = sorted((r['m'], r['knn_k200']) for r in nce.values() if r['m'])
    if ms and 'softmax' in nce:
        soft = nce['softmax']['knn_k200']
        rising = all(b >= a for (_, a), (_, b) in zip(ms, ms[1:]))
        held = ('yes' if rising and soft >= max(a for _, a in ms) else
                'partly (full softmax best, smallest m worst; not monotonic)'
                if soft >= max(a for _, a in ms)
                and ms[0][1] == min(a for _, a in ms) else 'no')
        out.append((
            '(2) NCE accuracy rises with m and approaches the full softmax',
            ', '.join(f'm={m} {a:.2f}' for m, a in ms)
            + f', softmax {soft:.2f} (kNN k=200)', held))
    det = res.get('det', {}).get('rows', {})
    box = {k: r['coco/bbox_mAP'] for k, r in det.items()}
    if 'supervised' in box and any(k in box for k in UNSUPERVISED):
        uns = {k: box[k] for k in UNSUPERVISED if k in box}
        better = [k for k, v in uns.items() if v > box['supervised']]
        out.append((
            '(3) unsupervised pretraining beats supervised for detection',
            ', '.join(f'{k} {v:.1f}' for k, v in uns.items())
            + f' vs supervised {box["supervised"]:.1f} box AP',
            'yes' if len(better) == len(uns) else
            f'partly ({", ".join(better)})' if better else 'no'))
    if 'exemplar-v2' in box and 'mocov2' in box:
        out.append(('(3) Exemplar-v2 beats MoCo v2 for detection',
                    f'{box["exemplar-v2"]:.1f} vs {box["mocov2"]:.1f} box AP',
                    'yes' if box['exemplar-v2'] > box['mocov2'] else 'no'))
    if 'random init' in box and len(box) > 1:
        rnd = box['random init']
        better = [k for k, v in box.items() if k != 'random init' and v > rnd]
        spread = max((max(r['coco/bbox_mAP/seeds'])
                      - min(r['coco/bbox_mAP/seeds'])
                      for r in det.values()
                      if len(r.get('coco/bbox_mAP/seeds', [])) > 1),
                     default=None)
        out.append(('(3) pretraining beats random init for detection',
                    f'random init {rnd:.1f}; better: '
                    + (', '.join(f'{k} {box[k]:.1f}' for k in better)
                       or 'none')
                    + ('' if spread is None else
                       f' (box AP mean over seeds; the largest seed-to-seed '
                       f'range of one start is {spread:.1f})'),
                    'yes' if len(better) == len(box) - 1 else
                    'partly' if better else 'no'))
    semi = res.get('semisup', {}).get('rows', {})
    for frac in ('1%', '10%'):
        rnd = semi.get(f'random init / {frac}')
        uns = {k: semi[f'{k} / {frac}']['top1'] for k in UNSUPERVISED
               if f'{k} / {frac}' in semi}
        if rnd and uns:
            better = [k for k, v in uns.items() if v > rnd['top1']]
            out.append((
                f'(4) self-supervised starts beat random init with {frac} of '
                'the labels',
                ', '.join(f'{k} {v:.2f}' for k, v in uns.items())
                + f' vs random init {rnd["top1"]:.2f}',
                'yes' if len(better) == len(uns) else
                f'partly ({", ".join(better)})' if better else 'no'))
    out.extend(npid_vs_pretext(box, semi))
    return out


def npid_vs_pretext(box, semi):
    """NPID's claim over the pretext tasks before it, per transfer: NPID's
    start against every pretext-task start measured."""
    transfers = [('for detection', box, 'box AP', 1)]
    for frac in ('1%', '10%'):
        top1 = {r['start']: r['top1'] for r in semi.values()
                if r.get('fraction') == frac}
        transfers.append((f'with {frac} of the labels', top1, 'top-1', 2))
    out = []
    for what, scores, unit, digits in transfers:
        pre = {k: scores[k] for k in PRETEXT_STARTS if k in scores}
        if 'npid' not in scores or not pre:
            continue
        npid = scores['npid']
        lost = [k for k, v in pre.items() if npid <= v]
        out.append((
            f'(5) instance discrimination (NPID) beats the pretext tasks '
            f'{what}',
            f'npid {npid:.{digits}f} vs '
            + ', '.join(f'{k} {v:.{digits}f}' for k, v in pre.items())
            + f' ({unit})',
            'no' if len(lost) == len(pre) else
            f'partly (not {", ".join(lost)})' if lost else 'yes'))
    return out


def plots(res, out_dir, stem, args):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    def bars(path, groups, series, ylabel, title):
        fig, ax = plt.subplots(figsize=(7, 3.6))
        width = 0.8 / len(series)
        for j, (label, vals) in enumerate(series.items()):
            ax.bar([i + j * width for i in range(len(groups))], vals, width,
                   label=label)
        ax.set_xticks([i + width * (len(series) - 1) / 2
                       for i in range(len(groups))])
        ax.set_xticklabels(groups, fontsize=7, rotation=15)
        ax.set(ylabel=ylabel, title=title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    files = []
    param = res.get('param', {}).get('rows', {})
    if param:
        names = list(param)
        feat = {n: r.get('backbone') or r.get('pixels') for n, r in
                param.items()}
        files.append(bars(
            osp.join(out_dir, f'{stem}_param.png'), names,
            {'kNN k=200': [feat[n]['knn_k200'] for n in names],
             'linear probe': [feat[n]['linear'] for n in names]},
            'top-1 (%)', f'(1) backbone features, {args.train_size} images, '
            f'{args.epochs} epochs'))
    nce = res.get('nce', {}).get('rows', {})
    pts = sorted((r['m'], r['knn_k200']) for r in nce.values() if r['m'])
    if pts:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([m for m, _ in pts], [a for _, a in pts], 'o-',
                label='NCE, m noise samples')
        if 'softmax' in nce:
            ax.axhline(nce['softmax']['knn_k200'], ls='--', color='gray',
                       label='full non-parametric softmax')
        ax.set(xscale='log', xlabel='m', ylabel='kNN top-1 (%), k=200',
               title=f'(2) NPID, {args.train_size} images, {args.epochs} '
               'epochs')
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'{stem}_nce_vs_m.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    det = res.get('det', {}).get('rows', {})
    if det:
        names = list(det)
        files.append(bars(
            osp.join(out_dir, f'{stem}_det.png'), names,
            {'box AP': [det[n]['coco/bbox_mAP'] for n in names],
             'mask AP': [det[n]['coco/segm_mAP'] for n in names]},
            'COCO AP', f'(3) Mask R-CNN, {args.det_epochs} epochs'))
    semi = res.get('semisup', {}).get('rows', {})
    if semi:
        names = list(dict.fromkeys(r['start'] for r in semi.values()))
        files.append(bars(
            osp.join(out_dir, f'{stem}_semisup.png'), names,
            {f'{frac} labels': [semi.get(f'{n} / {frac}', {}).get('top1', 0)
                                for n in names] for frac in ('1%', '10%')},
            'top-1 (%)', '(4) semi-supervised fine-tuning'))
    return files


def mode(args):
    if args.recipes is not None:
        return '--recipes mode'
    return f'{"quick" if args.quick else "full"} mode, seed {args.seed}'


def report(res, args, pngs, command):
    def rel(path):
        return osp.relpath(path, osp.dirname(osp.abspath(args.docs_out)))

    lines = [
        '# Benchmarks: the transfer claims, measured at CPU scale', '',
        '<!-- written by benchmarks/claims_benchmark.py; rerun it '
        'rather than editing by hand -->', '',
        f'`{command}`, {mode(args)}, {args.threads} thread(s) per training, '
        f'on a {os.cpu_count()}-core CPU machine; report written '
        f'{time.strftime("%Y-%m-%d %H:%M")}. '
        + (f'Every start and fine-tuning of seed s: seeds '
           f'{", ".join(str(x) for x in args.recipes)}; mean over the seeds, '
           'each seed in brackets. ' if args.recipes is not None else
           'Pretraining and classification use one seed, so differences of '
           'about one point are within the noise of a single run; detection '
           'fine-tuning ran with seed(s) '
           f'{", ".join(str(x) for x in args.det_seeds)}. ')
        + 'Wall times are what each training took (several trainings '
        'sometimes shared the cores).', '']
    if args.recipes is not None:
        lines += [
            'Starts: the 15-minute Fashion-MNIST recipes of '
            '`benchmarks/recipes_benchmark.py` (work dir '
            f'`{osp.relpath(args.recipes_dir, ROOT)}`; '
            f'{", ".join(args.recipe_starts)}; '
            f'{args.network}), pretrained on all 60,000 training images, so '
            'they saw the detection set\'s source items (training images '
            '50,000-59,999) unlabelled; random init is the same network. '
            '`benchmarks/reports/claims.md` has the earlier run (width-16 '
            'starts pretrained 20 epochs on 10,000 images, one seed) and '
            'sections (1)-(2). Fine-tuning and detection runs that the '
            'recipes benchmark made (same checkpoint, config and seed) are '
            'reused.', '']
    if args.quick:
        lines += ['**Quick mode is a smoke run of every section**: at these '
                  'sizes (a few hundred detection iterations, 2-10 epochs of '
                  'fine-tuning) the numbers do not test the claims; '
                  '`benchmarks/reports/claims.md` has the full run.', '']
    lines += [] if args.recipes is not None else [
        'Data: the first '
        f'{args.train_size} Fashion-MNIST training images for pretraining, '
        f'the first {args.test_size} test images for every classification '
        'read-out; the detection set is composed of Fashion-MNIST training '
        'items 50000-59999 (disjoint from the pretraining images). Every '
        'network is the same ResNet-18 at width 16 (CIFAR stem, 1x28x28).',
        '']
    total = sum(r.get('seconds') or 0 for section in SECTIONS
                for n, r in res.get(section, {}).get('rows', {}).items()
                if not (section == 'param' and n in ('supervised',
                        'non-parametric softmax (NPID)')))  # counted once
    lines += [f'Training wall time of everything below, summed: '
              f'{total / 3600:.1f} h.', '']
    found = verdicts(res, args)
    if found:
        lines += ['## Which claims held', '', '| claim | measured | held? |',
                  '|---|---|---|']
        lines += [f'| {c} | {m} | {h} |' for c, m, h in found]
        lines.append('')
    pre = res.get('pretrain', {}).get('rows', {})
    if pre:
        lines += ['## Pretrained starts', '',
                  '| start | config | images | epochs | wall time |',
                  '|---|---|---|---|---|']
        lines += [f"| {n} | `{r['config']}` | {r['images']} | {r['epochs']} "
                  f"| {fmt_time(r['seconds'])} |" for n, r in pre.items()]
        lines += ['', f'Batch 128, {negatives(args)} negatives (AdCo) / queue (MoCo v2, '
                  'Exemplar) / NCE noise samples (NPID), cosine lr; the '
                  'configs of adco_benchmark.py and exemplar_benchmark.py.',
                  '']
    param = res.get('param', {}).get('rows', {})
    if param:
        lines += [
            '## (1) Non-parametric vs parametric instance softmax', '',
            f'Both trained {args.epochs} epochs on {args.train_size} images '
            'with the same backbone, 128-d neck, data, optimiser and cosine '
            'schedule; the non-parametric one is NPID with the full softmax '
            'over the memory bank, the parametric one learns a '
            f'{args.train_size}-way classifier (one weight per image). kNN '
            f'(tau 0.07) and linear probe (L-BFGS, {args.probe_epochs} '
            'rounds) top-1 on the test images.', '',
            '| features | embed kNN k=20 | embed kNN k=200 | embed linear | '
            'backbone kNN k=20 | backbone kNN k=200 | backbone linear | '
            'epochs | wall time |', '|---|---|---|---|---|---|---|---|---|']
        for name, r in param.items():
            emb, bb = r.get('embed'), r.get('backbone') or r.get('pixels')
            cells = [f"{emb[k]:.2f}" if emb else '-'
                     for k in ('knn_k20', 'knn_k200', 'linear')]
            cells += [f"{bb[k]:.2f}"
                      for k in ('knn_k20', 'knn_k200', 'linear')]
            lines.append(f"| {name} | {' | '.join(cells)} | {r['epochs']} | "
                         f"{fmt_time(r['seconds'])} |")
        lines += ['', 'Raw pixels: the 784 mean-centred pixels (in the '
                  'backbone columns).', '']
    nce = res.get('nce', {}).get('rows', {})
    if nce:
        lines += ['## (2) NPID: NCE with m noise samples vs the full softmax',
                  '', f'{args.train_size} images, {args.epochs} epochs, EMA Z,'
                  ' bank initialised by a forward pass; kNN of the 128-d '
                  'embedding.', '',
                  '| loss | kNN k=20 | kNN k=200 | epochs | wall time |',
                  '|---|---|---|---|---|']
        lines += [f"| {n} | {r['knn_k20']:.2f} | {r['knn_k200']:.2f} | "
                  f"{r['epochs']} | {fmt_time(r['seconds'])} |"
                  for n, r in nce.items()]
        lines.append('')
    det = res.get('det', {}).get('rows', {})
    if det:
        seeds = ', '.join(str(x) for x in args.det_seeds)
        n_train, n_val = res['det'].get('images', args.det_images)
        lines += ['## (3) Detection and instance segmentation transfer', '',
                  f'`{osp.relpath(osp.join(ROOT, args.det_config), ROOT)}`: Mask R-CNN ({args.network}, FPN, '
                  f'all layers trained, BN not frozen) fine-tuned {args.det_epochs} epochs on '
                  f'{n_train} composed images (lr x0.1 for the '
                  f'last epoch); COCO AP on {n_val} val images'
                  + (f', mean over fine-tuning seeds {seeds} (each seed in '
                     'brackets); wall time summed over the seeds.'
                     if len(args.det_seeds) > 1 else f', seed {seeds}.'),
                  '',
                  '| start | box AP | box AP50 | mask AP | mask AP50 | '
                  'epochs | wall time |', '|---|---|---|---|---|---|---|']
        lines += [f"| {n} | " + ' | '.join(seeds_cell(r, k, 1)
                                           for k in DET_METRICS)
                  + f" | {r['epochs']} | {fmt_time(r['seconds'])} |"
                  for n, r in det.items()]
        lines.append('')
    semi = res.get('semisup', {}).get('rows', {})
    if semi:
        lines += ['## (4) Semi-supervised fine-tuning', '',
                  'End to end from each start with 1% / 10% of the labels '
                  '(class-balanced subsets of the 60k training set drawn '
                  'with the seed; configs '
                  + ', '.join(f'`{c}`' for c in args.ft_cfgs.values())
                  + f'), cosine lr; top-1 on {args.test_size} test '
                  'images. Exemplar-v2 and supervised saw the labels of their '
                  'pretraining images, so only the other starts are '
                  'semi-supervised in the strict sense.', '',
                  '| start | labels | epochs | top-1 | wall time |',
                  '|---|---|---|---|---|']
        lines += [f"| {r['start']} | {r['fraction']} | {r['epochs']} | "
                  f"{seeds_cell(r, 'top1', 2)} | {fmt_time(r['seconds'])} |"
                  for r in semi.values()]
        lines.append('')
    lines += [f'![{osp.basename(p)}]({rel(p)})' for p in pngs]
    lines += ['', '## Per-method benchmarks', '',
              'Measured by their own scripts (commands inside): '
              '`benchmarks/reports/npid.md`, `benchmarks/reports/adco.md`, '
              '`benchmarks/reports/exemplar.md`, `benchmarks/reports/splitmask.md`; '
              'a summary of their claims is in `benchmarks/reports/methods.md`.']
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    # quoted, so that a start named with a space can be pasted back
    command = 'python benchmarks/claims_benchmark.py ' + shlex.join(
        sys.argv[1:])
    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    os.makedirs(args.work_dir, exist_ok=True)

    def load(section):
        path = osp.join(args.work_dir, f'results_{section}.json')
        if osp.exists(path):
            with open(path) as f:
                return json.load(f)
        return {}

    res = {s: load(s) for s in SECTIONS}
    t = time.time()
    start_ckpts, start_rows = {}, {}
    names = [] if args.no_pretrain_starts else list(PRETRAINED)
    if not set(args.only) & {'pretrain', 'det', 'semisup'}:
        # (1) needs the supervised baseline only
        names = [n for n in names
                 if n == 'supervised' and 'param' in args.only]
    if args.recipes is not None:
        start_ckpts = dict(args.starts)
    else:
        for name, (ckpt, row) in starts(args, names).items():
            start_ckpts[name] = ckpt
            if row:
                start_rows[name] = row
    if start_rows:
        res['pretrain'].setdefault('rows', {}).update(start_rows)
    for section in args.only:
        results = res[section]

        def save(section=section, results=results):
            with open(osp.join(args.work_dir, f'results_{section}.json'),
                      'w') as f:
                json.dump(results, f, indent=2)

        if section == 'pretrain':
            save()
        elif section == 'param':
            param_section(args, results, save, start_rows)
        elif section == 'nce':
            nce_section(args, results, save)
        elif section == 'det':
            det_section(args, results, save, start_ckpts)
        elif section == 'semisup':
            semisup_section(args, results, save, start_ckpts)
    out_dir = osp.dirname(osp.abspath(args.docs_out))
    os.makedirs(out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.docs_out))[0]
    text = report(res, args, plots(res, out_dir, stem, args), command)
    with open(args.docs_out, 'w') as f:
        f.write(text)
    print(text)
    print(f'wrote {args.docs_out} ({(time.time() - t) / 60:.1f} min)')


if __name__ == '__main__':
    main()
