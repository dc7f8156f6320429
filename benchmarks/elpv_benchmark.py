"""Pretraining on a real data set that is not Fashion-MNIST: elpv solar cells.

    python tools/dataset_converters/prepare_elpv.py --ten-percent   # once
    python benchmarks/elpv_benchmark.py                       # full
    python benchmarks/elpv_benchmark.py --methods npid --seeds 0
    python benchmarks/elpv_benchmark.py --report-only
    python benchmarks/elpv_benchmark.py --quick               # smoke

elpv (2,624 electroluminescence images of solar cells, 300x300 grey, defect
probability 0, 1/3, 2/3 or 1; licence CC BY-NC-SA 4.0, never committed) as
the image folder of ``prepare_elpv.py``: ``DATA/train`` (1,968 images),
``DATA/test`` (656), ``DATA/train_10pct`` (197), one sub-folder per defect
class. For each method and seed:

1. pretrain with ``mm-instdisc-train METHOD --data DATA/train --size 96
   --minutes M --seed S --work-dir WORK/METHOD/seedS`` (``--epochs E`` with
   ``--epochs``), in a subprocess with ``--threads`` threads; the run's
   ``label_free_monitor.json`` is kept in the results;
2. read out the pretrained backbone (pooled last stage; SplitMask: the mean
   of its ViT's patch tokens) on DATA/test with DATA/train as reference /
   training set: weighted kNN top-1 (cosine, tau 0.07, k = 20 and 200) and
   a linear probe (``mm_instdisc.modules.readout``);
3. fine-tune a linear classifier on the backbone end to end
   (``benchmarks.lib.finetune_classifier``) with all training
   labels and with the 10% subset, the same short schedule for every start,
   tested on DATA/test.

Beside them, measured the same way: the same network at random
initialisation (one per architecture and seed: the ResNet methods share
one) and raw pixels (kNN and linear probe on the 96 px images). Every
result is saved to ``--out-json`` as soon as it exists, and a run whose
result is there is not repeated (an interrupted pretraining or fine-tuning
resumes from its last checkpoint); ``--out-md`` is the report.
``--quick``: 1 method, 1 seed, at most 16 training / 8 test / 2 subset
images a class, 1 pretraining epoch, 1 fine-tuning epoch (a smoke test).
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import platform
import shlex
import statistics
import subprocess
import sys
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

from benchmarks.lib import ROOT, finetune_classifier, setup_mmpretrain

CLASSES = ('p0', 'p033', 'p067', 'p1')
DEFAULT_METHODS = ('npid', 'mocov2', 'splitmask', 'rotation')
# features of the kNN / probe read-out: the pooled last backbone stage, or
# the model's embedding (SplitMask: the mean of the ViT's patch tokens)
FEATURE = {'splitmask': 'embed'}
#: (key, what the report calls it, needs a network)
READOUTS = (('knn_k20', 'weighted kNN top-1, k=20', False),
            ('knn_k200', 'weighted kNN top-1, k=200', False),
            ('linear', 'linear probe top-1', False),
            ('ft_full', 'fine-tuning top-1, all training labels', True),
            ('ft_10pct', 'fine-tuning top-1, 10% of the training labels',
             True))
FEATURE_KEYS = ('knn_k20', 'knn_k200', 'linear')
QUICK_PER_CLASS = dict(train=16, test=8, train_10pct=2)
CLI = ('import sys; from mm_instdisc.cli import train_folder; '
       'train_folder(sys.argv[1:])')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default=osp.join(ROOT, 'data/elpv'),
                   help="prepare_elpv.py's folder (train/, test/, "
                   'train_10pct/)')
    p.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--minutes', type=float, default=10.0,
                        help='pretraining wall-time budget per run')
    budget.add_argument('--epochs', type=int,
                        help='pretraining epochs per run instead')
    p.add_argument('--size', type=int, default=96)
    p.add_argument('--batch-size', type=int,
                   help="pretraining batch (default: mm-instdisc-train's)")
    p.add_argument('--workers', type=int,
                   help="pretraining loader workers (default: "
                   "mm-instdisc-train's)")
    p.add_argument('--ft-epochs', type=int, default=10,
                   help='fine-tuning epochs with all training labels')
    p.add_argument('--ft-epochs-10pct', type=int, default=30,
                   help='fine-tuning epochs with 10%% of the labels')
    p.add_argument('--ft-batch-size', type=int, default=64)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--work-dir', default=None,
                   help='default work_dirs/elpv (work_dirs/elpv_quick)')
    p.add_argument('--out-json', default=None, help='default '
                   'benchmarks/reports/elpv.json (WORK/results.json for --quick)')
    p.add_argument('--out-md', default=None, help='default '
                   'benchmarks/reports/elpv.md (WORK/elpv.md for --quick)')
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--quick', action='store_true',
                   help='smoke test: 1 method, 1 seed, ~64 images, 1 epoch')
    args = p.parse_args(argv)
    from mm_instdisc.own_data import METHOD_CONFIGS
    bad = [m for m in args.methods if m not in METHOD_CONFIGS]
    if bad:
        p.error(f'--methods {bad}: expected some of {sorted(METHOD_CONFIGS)}')
    if args.quick:
        args.methods, args.seeds = args.methods[:1], args.seeds[:1]
        args.epochs, args.minutes = 1, None
        args.ft_epochs = args.ft_epochs_10pct = 1
        args.ft_batch_size = min(args.ft_batch_size, 8)
    elif args.epochs is not None:
        args.minutes = None
    sub = 'elpv_quick' if args.quick else 'elpv'
    args.work_dir = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs',
                                                          sub))
    if args.quick:
        args.out_json = args.out_json or osp.join(args.work_dir,
                                                  'results.json')
        args.out_md = args.out_md or osp.join(args.work_dir, 'elpv.md')
    else:
        args.out_json = args.out_json or osp.join(ROOT, 'benchmarks/reports/'
                                                  'elpv.json')
        args.out_md = args.out_md or osp.join(ROOT, 'benchmarks/reports/elpv.md')
    args.data = osp.abspath(args.data)
    args.command = ' '.join(shlex.quote(a) for a in [
        'python', osp.relpath(osp.abspath(__file__), ROOT),
        *(sys.argv[1:] if argv is None else argv)])
    return args


def settings(args) -> dict:
    """What the results depend on: a results file of other settings is not
    reused."""
    return dict(data=args.data, size=args.size, minutes=args.minutes,
                epochs=args.epochs, batch_size=args.batch_size,
                ft_epochs=args.ft_epochs, ft_epochs_10pct=args.ft_epochs_10pct,
                ft_batch_size=args.ft_batch_size, quick=args.quick)


def host_info(threads: int) -> dict:
    """CPU model, cores and the flags that decide bf16 speed."""
    import torch
    model, flags = platform.processor() or 'unknown', []
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and model in ('unknown',
                                                               'x86_64', ''):
                    model = line.split(':', 1)[1].strip()
                elif line.startswith('flags'):
                    flags = line.split(':', 1)[1].split()
                    break
    except OSError:
        pass
    keys = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile')
    return dict(cpu=model, cores=os.cpu_count(), threads=threads,
                torch=torch.__version__,
                flags={k: k in flags for k in keys})


# ---------------------------------------------------------------- the data
def count_images(folder: str) -> dict:
    """Images per class sub-folder of ``folder``."""
    out = {}
    for c in CLASSES:
        d = osp.join(folder, c)
        out[c] = len(os.listdir(d)) if osp.isdir(d) else 0
    return out


def check_data(data: str) -> None:
    missing = [s for s in ('train', 'test', 'train_10pct')
               if not osp.isdir(osp.join(data, s))]
    if missing:
        raise SystemExit(
            f'{data} lacks {", ".join(missing)}: write it with python '
            'tools/dataset_converters/prepare_elpv.py --ten-percent '
            f'--out {data}')
    for s in ('train', 'test', 'train_10pct'):
        empty = [c for c, n in count_images(osp.join(data, s)).items()
                 if n == 0]
        if empty:
            raise SystemExit(f'{data}/{s} has no images of class '
                             f'{", ".join(empty)}; expected {CLASSES}.')


def quick_folder(data: str, out: str) -> str:
    """A small copy of ``data`` for --quick: the first
    ``QUICK_PER_CLASS[split]`` files (sorted) of each class, as symlinks;
    returns its root."""
    for split, n in QUICK_PER_CLASS.items():
        for c in CLASSES:
            src = osp.join(data, split, c)
            dst = osp.join(out, split, c)
            os.makedirs(dst, exist_ok=True)
            for name in sorted(os.listdir(src))[:n]:
                link = osp.join(dst, name)
                if not osp.lexists(link):
                    os.symlink(osp.realpath(osp.join(src, name)), link)
    return out


# ------------------------------------------------------------ pretraining
def pretrain_argv(args, method: str, seed: int, work_dir: str) -> list:
    """``mm-instdisc-train``'s arguments for one run."""
    argv = [method, '--data', osp.join(args.data, 'train'), '--size',
            str(args.size)]
    argv += (['--epochs', str(args.epochs)] if args.epochs is not None else
             ['--minutes', f'{args.minutes:g}'])
    argv += ['--seed', str(seed), '--work-dir', work_dir]
    if args.batch_size:
        argv += ['--batch-size', str(args.batch_size)]
    if args.workers is not None:
        argv += ['--workers', str(args.workers)]
    return argv


def checkpoint_info(path: str) -> dict:
    """Epochs and iterations a checkpoint reached, and a time-budgeted
    run's decision."""
    from mm_instdisc.utils.checkpoint import read_checkpoint
    ckpt = read_checkpoint(path)
    meta = ckpt.get('meta', {})
    info = dict(epochs=int(meta.get('epoch', 0)),
                iters=int(meta.get('iter', 0)))
    hub = ckpt.get('message_hub', {}).get('runtime_info', {})
    decision = hub.get('time_budget')
    if isinstance(decision, dict):
        info['decision'] = {k: v for k, v in decision.items()
                            if isinstance(v, (int, float, str))}
    return info


def last_checkpoint(work_dir: str) -> str:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{work_dir} has no last_checkpoint: the '
                                'pretraining wrote no checkpoint')
    with open(path) as f:
        ckpt = f.read().strip()
    if not osp.isabs(ckpt):
        ckpt = osp.join(work_dir, osp.basename(ckpt))
    return ckpt


def pretrain(args, method: str, seed: int, work_dir: str) -> dict:
    """One pretraining run through ``mm-instdisc-train`` in a subprocess
    (resumed from its last checkpoint when interrupted; a finished run,
    marked by ``pretrain.json``, is not repeated). Returns the run's
    record: command, wall seconds, epochs and iterations reached, config
    and final checkpoint."""
    done = osp.join(work_dir, 'pretrain.json')
    if osp.isfile(done):
        with open(done) as f:
            return json.load(f)
    argv = pretrain_argv(args, method, seed, work_dir)
    resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    cmd = [sys.executable, '-c', CLI, *argv, *(['--resume'] if resume
                                               else [])]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    print(f'[{method}/{seed}] mm-instdisc-train {" ".join(argv)}', flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    wall = time.time() - t
    ckpt = last_checkpoint(work_dir)
    configs = sorted(glob.glob(osp.join(work_dir, '*_custom.py')))
    if not configs:
        raise FileNotFoundError(f'{work_dir}: mm-instdisc-train wrote no '
                                'config')
    record = dict(command='mm-instdisc-train ' + ' '.join(
        shlex.quote(osp.relpath(a, ROOT) if osp.isabs(a) else a)
        for a in argv), wall_s=wall, resumed=resume, config=configs[0],
                  checkpoint=ckpt, minutes=args.minutes,
                  **checkpoint_info(ckpt))
    with open(done, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def monitor_record(work_dir: str):
    """The run's ``label_free_monitor.json`` (LabelFreeMonitorHook), or
    None when the hook wrote none."""
    path = osp.join(work_dir, 'label_free_monitor.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------- networks
def arch_name(backbone: dict) -> str:
    """A short name of a backbone config plus a digest of all of it (two
    methods share a random-init row only with identical backbones)."""
    kind = backbone.get('type', 'net')
    arch = backbone.get('arch')
    if 'ResNet' in kind:
        name = f'resnet{backbone.get("depth")}-w{backbone.get("base_channels", 64)}'
    elif isinstance(arch, dict):
        name = (f'vit-w{arch.get("embed_dims")}d{arch.get("num_layers")}-'
                f'p{backbone.get("patch_size")}')
    else:
        name = str(kind).lower()
    digest = hashlib.sha1(json.dumps(backbone, sort_keys=True,
                                     default=str).encode()).hexdigest()[:6]
    return f'{name}-{digest}'


def is_vit(backbone: dict) -> bool:
    kind = str(backbone.get('type', ''))
    return 'ViT' in kind or 'VisionTransformer' in kind


def feature_dim(backbone: dict, channels: int, size: int) -> int:
    """Channels of the backbone's pooled last output."""
    import torch
    from mmpretrain.registry import MODELS
    net = MODELS.build(copy.deepcopy(backbone))
    net.eval()  # mmpretrain's ResNet.train() returns None
    with torch.no_grad():
        out = net(torch.zeros(1, channels, size, size))
    out = out[-1] if isinstance(out, (list, tuple)) else out
    return int(out.shape[1] if out.dim() == 4 else out.shape[-1])


def finetune_config(pre_cfg, train_dir: str, test_dir: str, path: str, *,
                    batch_size: int) -> str:
    """An ImageClassifier config for fine-tuning the backbone of the
    pretraining config ``pre_cfg`` end to end: the pooled backbone, one
    linear layer, cross-entropy; trained on ``train_dir``, tested on
    ``test_dir`` (one sub-folder per class), written to ``path``.

    ResNets: SGD lr 0.01 (head x10), momentum 0.9, weight decay 5e-4, as
    the Fashion-MNIST fine-tuning configs; ViTs: AdamW lr 1e-3, weight
    decay 0.05, layer-wise lr decay 0.75, as SplitMask's. Flips (both
    axes) are the augmentation. ``finetune_classifier`` sets the schedule,
    the seed and the start.
    """
    from mmengine.config import Config
    data = pre_cfg.train_dataloader.dataset
    size, channels = int(data.img_size), int(data.channels)
    pre = pre_cfg.model.data_preprocessor
    backbone = pre_cfg.model.backbone.to_dict()
    backbone.pop('init_cfg', None)
    vit = is_vit(backbone)
    if vit:
        backbone['out_type'] = 'avg_featmap'
    dim = feature_dim(backbone, channels, size)
    n_train = sum(count_images(train_dir).values())

    def dataset(root, pipeline):
        return dict(type='ImageFolderDataset', data_root=root,
                    with_label=True, img_size=size, channels=channels,
                    pipeline=pipeline)

    def loader(root, pipeline, train):
        return dict(batch_size=min(batch_size, n_train) if train else 128,
                    num_workers=0, persistent_workers=False, drop_last=train,
                    sampler=dict(type='DefaultSampler', shuffle=train),
                    collate_fn=dict(type='default_collate'),
                    dataset=dataset(root, pipeline))

    flips = dict(type='RandomFlip', prob=[0.25, 0.25],
                 direction=['horizontal', 'vertical'])
    if vit:
        optim = dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05,
                           betas=(0.9, 0.999)),
            constructor='LearningRateDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.75, custom_keys={
                k: dict(decay_mult=0.0) for k in (
                    '.ln', '.bias', '.cls_token', '.pos_embed', '.gamma')}))
    else:
        optim = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                    weight_decay=5e-4),
                     paramwise_cfg=dict(custom_keys={'head': dict(
                         lr_mult=10)}))
    base = Config.fromfile(osp.join(ROOT, 'configs/_base_/'
                                    'default_runtime.py')).to_dict()
    base['default_hooks']['logger'] = dict(type='LoggerHook', interval=10)
    base.update(
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(type='ClsDataPreprocessor',
                                   num_classes=len(CLASSES),
                                   mean=list(pre.mean), std=list(pre.std),
                                   to_rgb=False),
            backbone=backbone,
            neck=None if vit else dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=len(CLASSES),
                      in_channels=dim, loss=dict(type='CrossEntropyLoss'),
                      topk=(1, ))),
        train_dataloader=loader(train_dir, [flips, dict(type='PackInputs')],
                                True),
        val_dataloader=loader(test_dir, [dict(type='PackInputs')], False),
        test_dataloader=loader(test_dir, [dict(type='PackInputs')], False),
        val_evaluator=dict(type='Accuracy', topk=(1, )),
        test_evaluator=dict(type='Accuracy', topk=(1, )),
        optim_wrapper=optim,
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=1,
                              by_epoch=True, begin=0, end=1)],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1,
                       val_interval=1),
        val_cfg=dict(), test_cfg=dict())
    os.makedirs(osp.dirname(path), exist_ok=True)
    Config(base).dump(path)
    return path


class Readout:
    """The read-out of one start (a pretraining checkpoint, or random init
    of a method's network): kNN and linear probe of its features, and the
    two fine-tunings, each result put in ``row`` and saved at once."""

    def __init__(self, args, loaders, save):
        self.args, self.loaders, self.save = args, loaders, save

    def features(self, row: dict, cfg, checkpoint: str, seed: int,
                 feature: str) -> None:
        if all(k in row for k in FEATURE_KEYS):
            return
        import torch

        from mm_instdisc.evaluation import extract_features, load_model
        from mm_instdisc.modules import readout
        if 'bank_size' in cfg.model and cfg.model.bank_size is None:
            cfg.model.bank_size = len(self.loaders[0].dataset)
        torch.manual_seed(seed)  # random init of checkpoint 'none'
        t = time.time()
        model = load_model(cfg, checkpoint)
        tr = extract_features(model, self.loaders[0], feature, desc='train')
        te = extract_features(model, self.loaders[1], feature, desc='test')
        res = readout(*tr, *te, seed=seed, num_classes=len(CLASSES))
        row.update({k: res[k] for k in FEATURE_KEYS},
                   readout_s=time.time() - t)
        self.save()

    def finetune(self, row: dict, name: str, pre_cfg, checkpoint,
                 work_dir: str, seed: int) -> None:
        args = self.args
        for key, subset, epochs in (('ft_full', 'train', args.ft_epochs),
                                    ('ft_10pct', 'train_10pct',
                                     args.ft_epochs_10pct)):
            if key in row:
                continue
            ft_dir = osp.join(work_dir, key)
            cfg_path = finetune_config(
                pre_cfg, osp.join(args.data, subset),
                osp.join(args.data, 'test'),
                osp.join(work_dir, f'{key}_config.py'),
                batch_size=args.ft_batch_size)
            res = finetune_classifier(f'{name} {key}', cfg_path, checkpoint,
                                      ft_dir, seed=seed, threads=args.threads,
                                      epochs=epochs)
            row[key] = res['top1']
            row[f'{key}_wall_s'] = res['seconds']
            self.save()


def readout_loaders(data: str, size: int, channels: int):
    """DATA/train and DATA/test, un-augmented, in a fixed order."""
    from mmengine.runner import Runner
    loaders = []
    for split in ('train', 'test'):
        loaders.append(Runner.build_dataloader(dict(
            batch_size=128, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False,
                         round_up=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ImageFolderDataset',
                         data_root=osp.join(data, split), with_label=True,
                         img_size=size, channels=channels,
                         pipeline=[dict(type='PackInputs')]))))
    return loaders


# ----------------------------------------------------------- the results
def load_results(args) -> dict:
    if osp.isfile(args.out_json):
        with open(args.out_json) as f:
            results = json.load(f)
        if not args.report_only and results.get('settings') != settings(
                args):
            old, new = results.get('settings', {}), settings(args)
            diff = {k: (old.get(k), new[k]) for k in new
                    if old.get(k) != new[k]}
            raise SystemExit(
                f'{args.out_json} holds results of other settings '
                f'(stored, now): {diff}; give another --out-json and '
                '--work-dir, or remove it.')
        return results
    return dict(settings=settings(args), rows={})


def save_results(args, results: dict) -> None:
    os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
    tmp = args.out_json + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, args.out_json)


def run(args) -> dict:
    """Every run that the results lack; returns the results."""
    import logging

    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from mm_instdisc.evaluation import dataset_labels, pixel_features
    from mm_instdisc.modules import readout
    from mm_instdisc.own_data import inspect_folder, write_folder_config
    results = load_results(args)
    rows = results['rows']

    def save():
        save_results(args, results)

    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    # model building logs every parameter's initialisation: keep it quiet
    MMLogger.get_instance('elpv_benchmark', log_level=logging.WARNING)
    train_dir = osp.join(args.data, 'train')
    info = inspect_folder(train_dir, size=args.size)
    loaders = readout_loaders(args.data, args.size, info['channels'])
    test_labels = dataset_labels(loaders[1].dataset).tolist()
    counts = {s: count_images(osp.join(args.data, s))
              for s in ('train', 'test', 'train_10pct')}
    majority = 100.0 * max(test_labels.count(c) for c in set(test_labels)) \
        / len(test_labels)
    meta = results.get('meta', {})
    # the report covers every method and seed run into these results
    results['meta'] = dict(
        host=host_info(args.threads), counts=counts,
        commands=list(dict.fromkeys([*meta.get('commands', []),
                                     args.command])),
        majority_top1=majority,
        methods=list(dict.fromkeys([*meta.get('methods', []),
                                    *args.methods])),
        seeds=list(dict.fromkeys([*meta.get('seeds', []), *args.seeds])))
    save()
    reader = Readout(args, loaders, save)
    if 'pixels' not in rows or not all(k in rows['pixels']
                                       for k in FEATURE_KEYS):
        tr, te = pixel_features(loaders[0]), pixel_features(loaders[1])
        rows['pixels'] = {k: v for k, v in readout(
            *tr, *te, seed=0, num_classes=len(CLASSES)).items()
            if k in FEATURE_KEYS}
        save()
    for seed in args.seeds:
        for method in args.methods:
            feature = FEATURE.get(method, 'backbone')
            work_dir = osp.join(args.work_dir, method, f'seed{seed}')
            row = rows.setdefault(f'{method}/{seed}', {})
            # the same network at random init (shared by identical ones)
            rnd_dir = osp.join(args.work_dir, 'configs', method)
            rnd_cfg = Config.fromfile(write_folder_config(
                method, train_dir, rnd_dir, size=args.size,
                batch_size=args.batch_size, seed=seed, info=info))
            arch = arch_name(rnd_cfg.model.backbone.to_dict())
            row['arch'] = arch
            rnd = rows.setdefault(f'random-{arch}/{seed}', dict(arch=arch))
            rnd.setdefault('methods', [])
            if method not in rnd['methods']:
                rnd['methods'].append(method)
            reader.features(rnd, rnd_cfg, 'none', seed, feature)
            reader.finetune(rnd, f'random-{arch}/{seed}', rnd_cfg, None,
                            osp.join(args.work_dir, f'random-{arch}',
                                     f'seed{seed}'), seed)
            # pretraining, then its read-outs
            if 'pretrain' not in row:
                row['pretrain'] = pretrain(args, method, seed, work_dir)
                save()
            if 'monitor' not in row:
                row['monitor'] = monitor_record(work_dir)
                save()
            pre = row['pretrain']
            cfg = Config.fromfile(pre['config'])
            reader.features(row, cfg, pre['checkpoint'], seed, feature)
            reader.finetune(row, f'{method}/{seed}', cfg, pre['checkpoint'],
                            work_dir, seed)
            print(f'[{method}/{seed}] done: ' + ', '.join(
                f'{k} {row[k]:.2f}' for k, _, _ in READOUTS), flush=True)
    return results


# ------------------------------------------------------------- the report
def mean_std(vals) -> str:
    if not vals:
        return '-'
    if len(vals) == 1:
        return f'{vals[0]:.2f}'
    return f'{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}'


def _runs(rows: dict, prefix: str, key: str, seeds) -> list:
    return [(s, rows[f'{prefix}/{s}'][key]) for s in seeds
            if key in rows.get(f'{prefix}/{s}', {})]


def _last(record, key):
    if not record:
        return None
    vals = [h[key] for h in record.get('history', []) if key in h]
    return vals[-1] if vals else None


def report(results: dict) -> list:
    """The markdown report (a list of lines) of a results dict."""
    meta, rows = results.get('meta', {}), results['rows']
    st = results['settings']
    methods, seeds = meta.get('methods', []), meta.get('seeds', [])
    host = meta.get('host', {})
    counts = meta.get('counts', {})
    flags = host.get('flags', {})
    bf16 = 'yes' if flags.get('avx512_bf16') or flags.get('amx_bf16') \
        else 'no'
    budget = (f'{st["minutes"]:g} minutes of wall time per pretraining run'
              if st.get('minutes') is not None else
              f'{st["epochs"]} epoch(s) per pretraining run')
    per_run = (f'{st["minutes"]:g} min' if st.get('minutes') is not None
               else f'{st["epochs"]} epoch(s)')
    n = {s: sum(c.values()) for s, c in counts.items()}
    lines = [
        '# elpv: pretraining on solar-cell images', '',
        *(['**Smoke test (`--quick`): a few images, one epoch, one '
           'fine-tuning epoch; these numbers show that the pipeline runs, '
           'not how well any method does.**', ''] if st.get('quick') else []),
        'Written by `benchmarks/elpv_benchmark.py` (regenerate with '
        '`--report-only`). Data: elpv (Buerhop-Lutz, Deitsch et al., EU '
        'PVSEC 2018; PyPI `elpv-dataset==1.0.0.post1`, **licence CC BY-NC-SA '
        '4.0: the images are not part of this repository**), written by '
        '`tools/dataset_converters/prepare_elpv.py --ten-percent` as an '
        f'image folder: {n.get("train", 0)} training images, '
        f'{n.get("test", 0)} test images and a 10% subset of '
        f'{n.get("train_10pct", 0)} training images, split by defect class '
        '(probability 0, 1/3, 2/3, 1: `p0`, `p033`, `p067`, `p1`), seeded.',
        '',
        '| split | ' + ' | '.join(CLASSES) + ' |',
        '|---|' + '---|' * len(CLASSES)]
    for split, c in counts.items():
        lines.append(f'| {split} | ' + ' | '.join(str(c.get(k, 0))
                                                  for k in CLASSES) + ' |')
    lines += [
        '', f'Predicting the most frequent class scores '
        f'{meta.get("majority_top1", float("nan")):.2f}% top-1 on the test '
        'images: every accuracy below is to be read against it.', '',
        '## Protocol', '',
        f'* Pretraining: {budget} (`mm-instdisc-train METHOD --data '
        f'DATA/train --size {st["size"]} '
        + (f'--minutes {st["minutes"]:g}' if st.get('minutes') is not None
           else f'--epochs {st["epochs"]}')
        + ' --seed S --work-dir ...`, each in its own process), on the '
        f'{n.get("train", 0)} training images without their labels.',
        '* Features: the pretrained backbone\'s pooled last stage '
        '(SplitMask: the mean of its ViT\'s patch tokens) of the '
        f'{st["size"]} px images. Weighted kNN (cosine, tau 0.07) of the '
        'test images against the training images, and a linear probe '
        '(L-BFGS on standardised features), both trained on all training '
        'labels.',
        '* Fine-tuning: the backbone plus one linear layer, trained end to '
        f'end ({st["ft_epochs"]} epochs with all training labels, '
        f'{st["ft_epochs_10pct"]} epochs with the 10% subset, batch '
        f'{st["ft_batch_size"]}, cosine lr, flips; ResNets SGD lr 0.01 '
        '(head x10), ViTs AdamW lr 1e-3 with layer-wise decay 0.75), from '
        'the pretrained checkpoint and from random init with the same seed '
        'and schedule; top-1 on the test images.',
        '* Random init: the same network, not trained, read out the same '
        'way (one per architecture and seed: the ResNet-18 methods share '
        'one). Raw pixels: the mean-centred 96 px images, kNN and linear '
        'probe.',
        f'* Seeds: {", ".join(map(str, seeds))}; mean ± std over the seeds, '
        'each seed\'s value in the next column.', '',
        f'Host: {host.get("cpu", "?")}, {host.get("cores", "?")} cores, '
        f'{host.get("threads", "?")} threads, torch {host.get("torch", "?")}; '
        'CPU flags: ' + ', '.join(f'{k} {"yes" if v else "no"}'
                                  for k, v in flags.items())
        + f' (bf16 kernels: {bf16}).', '',
        'Command (each invocation that wrote these results):', '', '```',
        *meta.get('commands', ['?']), '```']
    # budget
    lines += ['', '## Pretraining budget', '',
              '| method | seeds | budget | epochs reached | iterations | '
              'wall time (process) |', '|---|---|---|---|---|---|']
    for m in methods:
        pre = [rows[f'{m}/{s}']['pretrain'] for s in seeds
               if 'pretrain' in rows.get(f'{m}/{s}', {})]
        if not pre:
            continue
        lines.append(
            f'| {m} | {len(pre)} | {per_run} | '
            + ', '.join(str(p['epochs']) for p in pre) + ' | '
            + ', '.join(str(p['iters']) for p in pre) + ' | '
            + ', '.join(f'{p["wall_s"] / 60:.1f}' for p in pre) + ' min |')
    commands = [rows[f'{m}/{s}']['pretrain']['command'] for m in methods
                for s in seeds if 'pretrain' in rows.get(f'{m}/{s}', {})]
    if commands:
        lines += ['', 'The pretraining runs, each in its own process:', '',
                  '```', *commands, '```']
    verdicts = []
    for key, title, network in READOUTS:
        lines += ['', f'## {title[0].upper()}{title[1:]}', '',
                  '| start | seeds | top-1 (%) | per seed | beats random '
                  'init |', '|---|---|---|---|---|']
        archs = []
        for m in methods:
            arch = next((rows[f'{m}/{s}'].get('arch') for s in seeds
                         if f'{m}/{s}' in rows), None)
            runs = _runs(rows, m, key, seeds)
            rnd = dict(_runs(rows, f'random-{arch}', key, seeds))
            if arch and arch not in archs:
                archs.append(arch)
            if not runs:
                continue
            vals = [v for _, v in runs]
            same = [rnd[s] for s, _ in runs if s in rnd]
            if len(same) == len(runs):
                better = statistics.mean(vals) > statistics.mean(same)
                beats = 'yes' if better else '**no**'
                if not better:
                    verdicts.append(
                        f'**{m}** does not beat random init on {title}: '
                        f'{statistics.mean(vals):.2f} against '
                        f'{statistics.mean(same):.2f} at the same seeds.')
            else:
                beats = 'no random init at these seeds'
            lines.append(f'| {m} | {len(vals)} | {mean_std(vals)} | '
                         + ', '.join(f'{v:.2f}' for v in vals)
                         + f' | {beats} |')
        for arch in archs:
            runs = _runs(rows, f'random-{arch}', key, seeds)
            if runs:
                vals = [v for _, v in runs]
                used = rows[f'random-{arch}/{runs[0][0]}'].get('methods', [])
                lines.append(
                    f'| random init ({arch.rsplit("-", 1)[0]}: '
                    f'{", ".join(used)}) | {len(vals)} | {mean_std(vals)} | '
                    + ', '.join(f'{v:.2f}' for v in vals) + ' | - |')
        if not network and key in rows.get('pixels', {}):
            lines.append(f'| raw pixels | - | {rows["pixels"][key]:.2f} | '
                         '(deterministic) | - |')
    lines += ['', '## Does pretraining beat random init?', '']
    if verdicts:
        lines += [f'* {v}' for v in verdicts]
    else:
        lines.append('Every pretrained method beats the same network at '
                     'random init on every read-out (mean over the same '
                     'seeds).')
    px = rows.get('pixels', {})
    below = [f'{m} ({title})' for m in methods
             for key, title, network in READOUTS
             if not network and key in px and _runs(rows, m, key, seeds)
             and statistics.mean(v for _, v in _runs(rows, m, key, seeds))
             <= px[key]]
    if below:
        lines += ['', 'Not above raw pixels: ' + '; '.join(below) + '.']
    # monitoring
    lines += ['', '## Label-free monitoring of the pretraining', '',
              'Last values of `LabelFreeMonitorHook` (RankMe: effective '
              'rank of the embeddings, 1 = collapse; alignment of two views, '
              '0 = they agree; uniformity, lower = more spread), from each '
              "run's `label_free_monitor.json` (kept whole in the results "
              'JSON).', '',
              '| run | evaluations | RankMe | alignment | uniformity | '
              'loss (first -> last) |', '|---|---|---|---|---|---|']
    for m in methods:
        for s in seeds:
            rec = rows.get(f'{m}/{s}', {}).get('monitor')
            if not rec:
                if f'{m}/{s}' in rows and 'monitor' in rows[f'{m}/{s}']:
                    lines.append(f'| {m}/{s} | no label_free_monitor.json '
                                 '| - | - | - | - |')
                continue
            loss = rec.get('loss') or []
            cells = [_last(rec, k) for k in ('rankme', 'alignment',
                                             'uniformity')]
            lines.append(
                f'| {m}/{s} | {len(rec.get("history", []))} | '
                + ' | '.join('-' if v is None else f'{v:.3f}' for v in cells)
                + ' | ' + (f'{loss[0][1]:.3f} -> {loss[-1][1]:.3f}' if loss
                           else '-') + ' |')
    todo = [f'{m}/{s}' for m in methods for s in seeds
            if not all(k in rows.get(f'{m}/{s}', {}) for k, _, _ in READOUTS)]
    if todo:
        lines += ['', f'Not finished yet: {", ".join(todo)} (rerun the '
                  'command: finished runs are reused).']
    return lines


def write_report(args, results: dict) -> None:
    lines = report(results)
    os.makedirs(osp.dirname(osp.abspath(args.out_md)), exist_ok=True)
    with open(args.out_md, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'report: {args.out_md}', flush=True)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.report_only:
        if not osp.isfile(args.out_json):
            raise SystemExit(f'--report-only: {args.out_json} does not exist')
        results = load_results(args)
    else:
        check_data(args.data)
        if args.quick:
            args.data = quick_folder(args.data,
                                     osp.join(args.work_dir, 'data'))
        results = run(args)
    write_report(args, results)
    return results


if __name__ == '__main__':
    main()
