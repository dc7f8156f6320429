"""Is the folder path as fast as the tensor path? NPID's folder config on
folders of PNG and of JPEG files: training img/s end to end (the data
loader's workers, ``ImageFolderDataset``, ``BatchAugmentPreprocessor`` on
the model's device, the step) against img/s of the same step on a batch
already in memory (train_step only), in the same run.

    python benchmarks/folder_input_benchmark.py \\
        [--sizes 96 128] [--formats png jpg] [--num-images 1024] \\
        [--iters 20] [--workers 0 2] [--out benchmarks/reports/folder_input.json]

The images are Fashion-MNIST items (real content, tiled 3x3 and coloured
per tile, so they are RGB photographs' size and entropy rather than 28x28
grey), written once at 160 px. Goal: end-to-end / train_step >= 0.9. The
JSON records the host (CPU flags: bf16 kernels or not), threads, workers
and the data set's one-off check-and-decode time, which is not part of
the training img/s.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

from _path import ROOT  # first: sys.path gets the checkout (no install)


def cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            flags = next(ln for ln in f if ln.startswith('flags')).split()
    except (OSError, StopIteration):
        return {}
    return {k: k in flags for k in ('avx2', 'avx512f', 'avx512_bf16',
                                    'amx_bf16')}


def write_images(root, fmt, n, side=160, seed=0):
    """n RGB images of side x side from Fashion-MNIST items (3x3 tiles,
    a colour per tile), as fmt files; returns root."""
    import numpy as np
    from PIL import Image

    from mm_instdisc.datasets.fashion_mnist_reader import load_fashion_mnist
    done = osp.join(root, '.done')
    if osp.exists(done):
        return root
    os.makedirs(root, exist_ok=True)
    imgs, _ = load_fashion_mnist(osp.join(ROOT, 'data', 'fashion_mnist'))
    rng = np.random.default_rng(seed)
    for i in range(n):
        idx = rng.choice(len(imgs), 9, replace=False)
        grid = np.concatenate([np.concatenate(
            list(imgs[idx[r * 3:(r + 1) * 3]]), 1) for r in range(3)], 0)
        tint = rng.uniform(0.4, 1.0, (3, 3, 3)).repeat(28, 0).repeat(28, 1)
        rgb = (grid[..., None] * tint).astype(np.uint8)
        img = Image.fromarray(rgb).resize((side, side), Image.BILINEAR)
        img.save(osp.join(root, f'{i:05d}.{fmt}'),
                 **({'quality': 90} if fmt == 'jpg' else {}))
    open(done, 'w').close()
    return root


def measure(data, size, iters, batch_size, workers, warmup=3):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mm_instdisc.own_data import write_folder_config
    work = osp.join(data + f'_work{size}')
    cfg = Config.fromfile(write_folder_config(
        'npid', data, work, size=size, epochs=1, batch_size=batch_size))
    cfg.work_dir = work
    cfg.train_dataloader.num_workers = workers
    cfg.train_dataloader.persistent_workers = workers > 0
    cfg.custom_hooks = []
    cfg.log_level = 'WARNING'
    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    loader = runner.build_dataloader(cfg.train_dataloader)
    init_s = time.time() - t0
    model = runner.model
    model.resize_bank(len(loader.dataset))
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    model.train()

    def step(batch):
        model.train_step(batch, optim)
        model.flush_bank_update()

    it = iter(loader)
    fixed = next(it)
    for _ in range(warmup):
        step(fixed)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:  # next epoch
            it = iter(loader)
            return next(it)

    # interleaved rounds, so that drift in the host's load hits both alike
    rounds = 3
    k = max(1, iters // rounds)
    t_fixed = t_loader = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(k):
            step(fixed)
        t_fixed += time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(k):
            step(next_batch())
        t_loader += time.perf_counter() - t
    step_only = rounds * k * batch_size / t_fixed
    end_to_end = rounds * k * batch_size / t_loader
    images = len(loader.dataset)

    return dict(size=size, images=images, batch_size=batch_size,
                workers=workers,
                iters=iters, init_seconds=round(init_s, 2),
                step_only_img_s=round(step_only, 1),
                end_to_end_img_s=round(end_to_end, 1),
                ratio=round(end_to_end / step_only, 3))


def main():
    import torch
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[96, 128])
    p.add_argument('--formats', nargs='+', default=['png', 'jpg'])
    p.add_argument('--num-images', type=int, default=1024)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2],
                   help='data loader workers to compare (0: the main '
                   'process packs the cached images)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--data-dir', default='work_dirs/folder_input_benchmark')
    p.add_argument('--out')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for fmt in args.formats:
        data = write_images(osp.join(args.data_dir, fmt), fmt,
                            args.num_images)
        for size in args.sizes:
            for workers in args.workers:
                r = dict(format=fmt, **measure(
                    data, size, args.iters, args.batch_size, workers))
                rows.append(r)
                print(json.dumps(r), flush=True)
    out = dict(host=cpu_flags(), threads=args.threads,
               num_images=args.num_images, goal_ratio=0.9, rows=rows,
               command=' '.join(['python'] + sys.argv))
    print('| format | size | workers | step only img/s | end to end img/s '
          '| ratio |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['format']} | {r['size']} | {r['workers']} | "
              f"{r['step_only_img_s']} | {r['end_to_end_img_s']} | "
              f"{r['ratio']} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
