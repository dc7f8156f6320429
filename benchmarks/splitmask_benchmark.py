"""SplitMask fine-tuning benchmark (numbers go to benchmarks/reports/splitmask.md).

    python benchmarks/splitmask_benchmark.py [--train-size 5000]
        [--epochs 20] [--ft-epochs 20] [--threads 1]
        [--work-dir work_dirs/splitmask_benchmark]

On a subset of Fashion-MNIST (``--train-size`` training images, 32 px, 4x4
patches; the elpv solar-cell set as well if the ``elpv-dataset`` package is
installed), the same ViT (``--width``/``--depth``) is pretrained for
``--epochs`` epochs on the subset's images by

- ``splitmask``: SplitMask (block split 50/50, MIM both ways + InfoNCE),
- ``beit``: the same model without split and match (``model.split=False``:
  one branch sees B and inpaints the block A, MIM only),
- ``mae``: mmpretrain's MAE (75% masking, 2-layer decoder, normalised pixels),
- ``random``: no pretraining,

then fine-tuned for ``--ft-epochs`` epochs on the same subset with labels
(configs/splitmask/benchmarks/vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_
fashion-mnist.py: layer-wise lr decay 0.75) and evaluated (top-1) on
``--test-size`` test images. Every stage is saved in the work dir
(``results.json`` + checkpoints), so a rerun skips finished stages and an
interrupted stage resumes from its last checkpoint.
"""
import argparse
import gzip
import json
import os
import struct
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

from benchmarks.lib import ROOT

PRETRAIN = os.path.join(
    ROOT, 'configs/splitmask/'
    'splitmask_vit-w128d4-p4_1xb128-coslr-20e_fashion-mnist.py')
FINETUNE = os.path.join(
    ROOT, 'configs/splitmask/benchmarks/'
    'vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_fashion-mnist.py')
METHODS = ('splitmask', 'beit', 'mae', 'random')


def schedule(epochs, warmup_iters):
    return [
        dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
             end=warmup_iters),
        dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0,
             end=epochs, convert_to_iter_based=True)
    ]


def arch(args):
    return dict(embed_dims=args.width, num_layers=args.depth,
                num_heads=args.heads, feedforward_channels=4 * args.width)


def common(cfg, args, data_root, work_dir, epochs):
    cfg.work_dir = work_dir
    cfg.resume = True  # continue an interrupted stage
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 50
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=1)
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.indices = args.train_size
    cfg.train_cfg.max_epochs = epochs
    iters = max(1, args.train_size // args.batch_size)
    cfg.param_scheduler = schedule(epochs, min(iters * epochs // 10 + 1,
                                               500))
    cfg.randomness = dict(seed=args.seed)


def pretrain_cfg(method, args, data_root, work_dir):
    from mmengine.config import Config
    cfg = Config.fromfile(PRETRAIN)
    common(cfg, args, data_root, work_dir, args.epochs)
    cfg.test_dataloader = None
    cfg.test_evaluator = None
    cfg.test_cfg = None
    w = args.width
    if method in ('splitmask', 'beit'):
        cfg.model.split = method == 'splitmask'
        cfg.model.backbone.arch = arch(args)
        cfg.model.neck.embed_dims = w
        cfg.model.neck.num_heads = args.heads
        cfg.model.head.loss.embed_dims = w
    elif method == 'mae':
        # the same normalisation, without SplitMask's split (MAEViT masks
        # its tokens itself)
        pre = {k: v for k, v in cfg.model.data_preprocessor.items()
               if k != 'mask'}
        cfg.model = dict(
            type='MAE',
            data_preprocessor=dict(pre, type='BatchAugmentPreprocessor'),
            backbone=dict(
                type='MAEViT', arch=arch(args), img_size=32, patch_size=4,
                patch_cfg=dict(in_channels=1), mask_ratio=0.75,
                drop_path_rate=0.1,
                layer_cfgs=dict(layer_scale_init_value=0.1)),
            neck=dict(
                type='MAEPretrainDecoder', num_patches=64, patch_size=4,
                in_chans=1, embed_dim=w, decoder_embed_dim=w,
                decoder_depth=2, decoder_num_heads=args.heads),
            head=dict(
                type='MAEPretrainHead', norm_pix=True, patch_size=4,
                in_channels=1,
                loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    else:
        raise ValueError(method)
    return cfg


def finetune_cfg(args, data_root, work_dir, checkpoint, num_classes):
    from mmengine.config import Config
    cfg = Config.fromfile(FINETUNE)
    common(cfg, args, data_root, work_dir, args.ft_epochs)
    cfg.model.backbone.arch = arch(args)
    cfg.model.head.in_channels = args.width
    cfg.model.head.num_classes = num_classes
    cfg.model.data_preprocessor.num_classes = num_classes
    cfg.model.backbone.init_cfg = (None if checkpoint is None else dict(
        type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].dataset.indices = args.test_size
    cfg.train_cfg.val_interval = args.ft_epochs
    return cfg


def write_idx(path, arr):
    import numpy as np
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack('>BBBB', 0, 0, 0x08, arr.ndim) + b''.join(
        struct.pack('>I', d) for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.tobytes())


def prepare_elpv(out_dir):
    """elpv as 28x28 IDX files (defect probability 0/1/3/2 -> 4 classes,
    a fixed 75/25 split). None if the package is not installed."""
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        return None
    import numpy as np
    from PIL import Image
    if not os.path.isfile(os.path.join(out_dir,
                                       't10k-labels-idx1-ubyte.gz')):
        images, probs, _ = load_dataset()
        small = np.stack([np.asarray(Image.fromarray(im).resize(
            (28, 28), Image.BILINEAR)) for im in images])
        labels = np.round(np.asarray(probs) * 3).astype(np.uint8)
        perm = np.random.default_rng(0).permutation(len(small))
        cut = int(0.75 * len(small))
        os.makedirs(out_dir, exist_ok=True)
        for prefix, idx in (('train', perm[:cut]), ('t10k', perm[cut:])):
            write_idx(os.path.join(out_dir, f'{prefix}-images-idx3-ubyte.gz'),
                      small[idx])
            write_idx(os.path.join(out_dir, f'{prefix}-labels-idx1-ubyte.gz'),
                      labels[idx])
    return out_dir


def run_stage(cfg, what):
    from mmengine.runner import Runner
    t = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test() if what == 'finetune' else {}
    return metrics, time.time() - t


def write_markdown(path, results, args, datasets):
    lines = [
        '# SplitMask benchmark: fine-tuning top-1 after pretraining', '',
        'Written by `benchmarks/splitmask_benchmark.py` with '
        f'`--train-size {args.train_size} --test-size {args.test_size} '
        f'--epochs {args.epochs} --ft-epochs {args.ft_epochs} --width '
        f'{args.width} --depth {args.depth} --batch-size {args.batch_size}`. '
        'Every method pretrains the same ViT for the same epochs on the '
        'training subset (no labels), then fine-tunes it with labels on the '
        'same subset (layer-wise lr decay 0.75) and is tested on the test '
        'subset.', '',
        '| data | method | pretrain (s) | fine-tune (s) | top-1 (%) |',
        '|---|---|---|---|---|'
    ]
    for ds in datasets:
        for m in args.methods:
            r = results.get(f'{ds}/{m}/finetune')
            p = results.get(f'{ds}/{m}/pretrain', {})
            if r is None:
                lines.append(f'| {ds} | {m} | - | - | not run |')
                continue
            lines.append(
                f'| {ds} | {m} | {p.get("seconds", 0):.0f} | '
                f'{r["seconds"]:.0f} | {r["top1"]:.2f} |')
    if 'elpv' not in datasets:
        lines += ['', 'elpv: the `elpv-dataset` package is not installed; '
                  'skipped.']
    if args.epochs < 5 or args.train_size < 1000:
        lines += ['', '**Smoke-test settings: these numbers only show that '
                  'the pipeline runs end to end; they say nothing about the '
                  'methods.**']
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--train-size', type=int, default=5000)
    p.add_argument('--test-size', type=int, default=10000)
    p.add_argument('--epochs', type=int, default=20,
                   help='pretraining epochs (all methods)')
    p.add_argument('--ft-epochs', type=int, default=20)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--heads', type=int, default=4)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS)
    p.add_argument('--data-root',
                   default=os.path.join(ROOT, 'data/fashion_mnist'))
    p.add_argument('--work-dir',
                   default=os.path.join(ROOT, 'work_dirs/splitmask_benchmark'))
    p.add_argument('--out',
                   default=os.path.join(ROOT, 'benchmarks/reports/splitmask.md'))
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope

    import mm_instdisc.datasets  # noqa: F401
    import mm_instdisc.engine  # noqa: F401
    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')

    os.makedirs(args.work_dir, exist_ok=True)
    res_path = os.path.join(args.work_dir, 'results.json')
    results = {}
    if os.path.isfile(res_path):
        with open(res_path) as f:
            results = json.load(f)
    datasets = {'fashion-mnist': (args.data_root, 10)}
    elpv = prepare_elpv(os.path.join(args.work_dir, 'elpv_idx'))
    if elpv is None:
        print('elpv-dataset not installed: elpv skipped.')
    else:
        datasets['elpv'] = (elpv, 4)

    for ds, (root, ncls) in datasets.items():
        for m in args.methods:
            ckpt = None
            if m != 'random':
                key = f'{ds}/{m}/pretrain'
                wd = os.path.join(args.work_dir, ds, m, 'pretrain')
                ckpt = os.path.join(wd, f'epoch_{args.epochs}.pth')
                if key not in results or not os.path.isfile(ckpt):
                    print(f'[{ds}] pretraining {m} ...', flush=True)
                    _, sec = run_stage(pretrain_cfg(m, args, root, wd),
                                       'pretrain')
                    results[key] = dict(seconds=sec, checkpoint=ckpt)
                    with open(res_path, 'w') as f:
                        json.dump(results, f, indent=1)
            key = f'{ds}/{m}/finetune'
            if key in results:
                print(f'[{ds}] {m}: done before, top-1 '
                      f'{results[key]["top1"]:.2f}')
                continue
            print(f'[{ds}] fine-tuning {m} ...', flush=True)
            wd = os.path.join(args.work_dir, ds, m, 'finetune')
            metrics, sec = run_stage(
                finetune_cfg(args, root, wd, ckpt, ncls), 'finetune')
            results[key] = dict(seconds=sec,
                                top1=float(metrics['accuracy/top1']))
            print(f'[{ds}] {m}: top-1 {results[key]["top1"]:.2f} '
                  f'({sec:.0f} s)', flush=True)
            with open(res_path, 'w') as f:
                json.dump(results, f, indent=1)
    write_markdown(args.out, results, args, list(datasets))
    print(open(args.out).read())


if __name__ == '__main__':
    main()
