"""Settings sweep of the pretext-task Fashion-MNIST recipes on a GPU.

    python benchmarks/pretext_sweep.py --data-root DIR --out sweep.json \\
        [--device cuda] [--parallel 10] [--only NAME ...]
    python benchmarks/pretext_sweep.py --data-root DIR --time NAME ...

The pretext recipes (configs/pretext/*_15min_fashion-mnist.py) must fit 15
minutes on a 2-core CPU, so a setting costs a quarter of an hour there. This
script replays their training in plain PyTorch (the GPU machine has no
OpenMMLab) with the same pieces: mm_instdisc.modules' label generation
(rotations, grid_patches + neighbour_pairs, jigsaw_tiles with the maximal
Hamming set, the masked-intensity blocks of SplitMaskGenerator), its losses
(PretextClsLoss, BinnedPixelLoss) and batch augmentation, the recipes'
network (benchmarks/lib/replay.py), bf16 autocast, SGD lr 0.06 (momentum
0.9, wd 5e-4), 200 warm-up iterations, cosine to 1% per epoch, batch 256.

Read-out: the benchmarks' (``mm_instdisc.modules.readout``): the weighted
kNN (k=20, 200; tau 0.07) of the pooled backbone features of the 10k test
images against all 60k training images and the linear probe (L-BFGS; the
``probe`` numbers of benchmarks/reports/pretext_sweep_h200.json came from an
earlier, Adam-trained quick probe, for ranking only), and for the patch
tasks the kNN of images upsampled to 56 px (the scale at
which the network saw patch content). ``--time`` measures seconds per
training step of settings on this machine's CPU (2 threads), to size their
epochs to the 15-minute budget.
"""
import argparse
import json
import math
import os
import time

import _path  # noqa: F401  (sys.path: the checkout; the GPU machine has no install)

import torch
import torch.nn.functional as F

from benchmarks.lib.replay import (MEAN, STD, backbone, load_split,
                                   pooled_features, run_side_by_side)
from mm_instdisc.modules import (BatchAugment, BinnedPixelLoss, PretextClsLoss,
                                 grid_patches, hamming_permutations,
                                 jigsaw_tiles, neighbour_pairs, readout,
                                 rotations)
from mm_instdisc.modules.splitmask import SplitMaskGenerator

DEFAULT = dict(task='rotation', epochs=3, lr=0.06, crop_min=0.5, seed=0,
               # relative location
               patch=7, gap=2, jitter=1, resize=14, upsample=None,
               # jigsaw
               tile=7, grid=3, perms=100,
               # masked intensity
               ratio=0.5, min_block=4, stride=4, fill='mean', bins=16)
# the recipes as they were when the sweep began (the names in
# benchmarks/reports/pretext_sweep_h200.json), then the variants
SETTINGS = {
    'random_init': dict(task='none', epochs=0),
    'rotation': dict(task='rotation', crop_min=0.2, epochs=3),
    'relloc': dict(task='relloc', epochs=3),
    'jigsaw': dict(task='jigsaw', epochs=2),
    'maskint': dict(task='maskint', epochs=7),
}
SETTINGS.update({
    # patch tasks at the images' own scale (no resize: cheaper steps too)
    'relloc_native_3ep': dict(task='relloc', resize=None, epochs=3),
    'relloc_native_10ep': dict(task='relloc', resize=None, epochs=10),
    'relloc_p8g1_native_10ep': dict(task='relloc', patch=8, gap=1,
                                    resize=None, epochs=10),
    'relloc_10ep': dict(task='relloc', epochs=10),
    'jigsaw_native_2ep': dict(task='jigsaw', resize=None, epochs=2),
    'jigsaw_native_8ep': dict(task='jigsaw', resize=None, epochs=8),
    'jigsaw_2x2_t13_native_4ep': dict(task='jigsaw', grid=2, tile=13, perms=24,
                                      resize=None, epochs=4),
    'jigsaw_8ep': dict(task='jigsaw', epochs=8),
    # masked intensity: how much is hidden and with what
    'maskint_r0.25': dict(task='maskint', ratio=0.25, epochs=7),
    'maskint_r0.75': dict(task='maskint', ratio=0.75, epochs=7),
    'maskint_noise': dict(task='maskint', fill='noise', epochs=7),
    'maskint_r0.25_noise': dict(task='maskint', ratio=0.25, fill='noise',
                                epochs=7),
    'maskint_stride2': dict(task='maskint', stride=2, min_block=16, epochs=7),
    # the 2x2 grid of the backbone's last map: hide 2 of 4 quadrants, predict
    # their mean intensity's bin (chosen on the CPU learning test, 2026-12-01)
    'maskint_stride14': dict(task='maskint', stride=14, min_block=1, epochs=7),
    'maskint_14ep': dict(task='maskint', epochs=14),
    'relloc_crop0.2': dict(task='relloc', crop_min=0.2, epochs=3),
    # patches cut from the image upsampled to 56 px: the shipped scale, more
    # of the garment in each patch (16 px = 8 px of the 28 px image)
    'relloc_up56_p16': dict(task='relloc', upsample=56, patch=16, gap=2,
                            jitter=1, resize=None, epochs=3),
    'jigsaw_up56_t16': dict(task='jigsaw', upsample=56, tile=16, resize=None,
                            epochs=2),
    'jigsaw_p30': dict(task='jigsaw', perms=30, epochs=2),
    'jigsaw_p300': dict(task='jigsaw', perms=300, epochs=2),
    'maskint_crop0.2': dict(task='maskint', crop_min=0.2, epochs=7),
    'relloc_lr0.03_10ep': dict(task='relloc', lr=0.03, epochs=10),
    'relloc_r10': dict(task='relloc', resize=10, epochs=3),
    'relloc_r12': dict(task='relloc', resize=12, epochs=3),
    # second sweep: what fits the CPU budget (``--time``)
    'relloc_r10_4ep': dict(task='relloc', resize=10, epochs=4),
    'relloc_r12_4ep': dict(task='relloc', resize=12, epochs=4),
    'relloc_lr0.12': dict(task='relloc', lr=0.12, epochs=3),
    'relloc_r10_lr0.12_4ep': dict(task='relloc', resize=10, lr=0.12,
                                  epochs=4),
    'relloc_6ep': dict(task='relloc', epochs=6),
    'jigsaw_2x2_t13_native_5ep': dict(task='jigsaw', grid=2, tile=13,
                                      perms=24, resize=None, epochs=5),
    'jigsaw_2x2_t12_native_4ep': dict(task='jigsaw', grid=2, tile=12,
                                      perms=24, resize=None, epochs=4),
    'jigsaw_2x2_t13_p12_native_4ep': dict(task='jigsaw', grid=2, tile=13,
                                          perms=12, resize=None, epochs=4),
    'maskint_lr0.12': dict(task='maskint', lr=0.12, epochs=7),
    'maskint_bins8': dict(task='maskint', bins=8, epochs=7),
    'relloc_lr0.2': dict(task='relloc', lr=0.2, epochs=3),
    'maskint_bins8_lr0.12': dict(task='maskint', bins=8, lr=0.12, epochs=7),
    'jigsaw_2x2_t12_native_4ep_lr0.12': dict(task='jigsaw', grid=2, tile=12,
                                             perms=24, resize=None, lr=0.12,
                                             epochs=4),
    'jigsaw_native_crop0.2_8ep': dict(task='jigsaw', resize=None,
                                      crop_min=0.2, epochs=8),
})

#: the setting each shipped config is now (tests/test_tools/
#: test_pretext_sweep.py checks it against configs/pretext/)
RECIPES = {'rotation': 'rotation', 'relloc': 'relloc_lr0.12',
           'jigsaw': 'jigsaw_2x2_t12_native_4ep',
           'maskint': 'maskint_stride14'}
#: run after the settings: the spread of the read-out over seeds
SEED_CHECKS = ['random_init@1', 'random_init@2', 'relloc@1', 'jigsaw@1',
               'maskint@1']


def resize(x, size):
    if size is None or x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode='bilinear',
                         align_corners=False)


class Task:
    """One pretext task's head and training loss (mirrors
    mm_instdisc/models/selfsup/pretext.py)."""

    def __init__(self, cfg, device):
        self.cfg, t = cfg, cfg['task']
        if t == 'rotation':
            self.head = PretextClsLoss(256, 4)
        elif t == 'relloc':
            self.head = PretextClsLoss(512, 8, hidden_channels=512)
        elif t == 'jigsaw':
            self.perms = hamming_permutations(cfg['perms'], cfg['grid']**2)
            self.head = PretextClsLoss(cfg['grid']**2 * 256, cfg['perms'],
                                       hidden_channels=512)
        elif t == 'maskint':
            self.head = BinnedPixelLoss(256, space='intensity',
                                        num_bins=cfg['bins'])
        else:
            self.head = None
        if self.head is not None:
            self.head.to(device)

    def loss(self, net, x):
        """(loss, task accuracy %) of a normalised batch (B, 1, 28, 28)."""
        c, t = self.cfg, self.cfg['task']
        if t in ('relloc', 'jigsaw'):
            x = resize(x, c['upsample'])
        if t == 'rotation':
            x, labels = rotations(x)
            return self._cls(net(x), labels)
        if t == 'relloc':
            patches = grid_patches(x, c['patch'], c['gap'], c['jitter'])
            B = patches.shape[0]
            feats = net(resize(patches.flatten(0, 1), c['resize']))
            return self._cls(*neighbour_pairs(feats.view(B, 9, -1)))
        if t == 'jigsaw':
            tiles, labels = jigsaw_tiles(x, self.perms, c['tile'])
            B = tiles.shape[0]
            feats = net(resize(tiles.flatten(0, 1), c['resize']))
            return self._cls(feats.view(B, -1), labels)
        # masked intensity: the feature map, not the pooled features
        s = c['stride']
        target = F.avg_pool2d(((x * STD + MEAN) / 255).clamp(0, 1), s, s)
        B, _, h, w = target.shape
        gen = SplitMaskGenerator((h, w), mode='block', ratio=c['ratio'],
                                 min_block_patches=c['min_block'])
        hidden = gen.masks(B).view(B, h, w).to(x.device)
        pix = hidden.repeat_interleave(s, 1).repeat_interleave(s, 2)
        pix = F.pad(pix, (0, x.shape[-1] - pix.shape[-1], 0,
                          x.shape[-2] - pix.shape[-2]))[:, None]
        fill = torch.randn_like(x) if c['fill'] == 'noise' else 0.0
        x = torch.where(pix, fill, x)
        return self.head(net[:-2](x), target, hidden, return_acc=True)

    def _cls(self, feats, labels):
        loss, logits = self.head(feats, labels, return_logits=True)
        acc = (logits.argmax(1) == labels).float().mean() * 100
        return loss, acc


def build(cfg, device):
    torch.manual_seed(cfg['seed'])
    net = backbone().to(device).to(memory_format=torch.channels_last)
    task = Task(cfg, device)
    params = list(net.parameters())
    if task.head is not None:
        params += list(task.head.parameters())
    opt = torch.optim.SGD(params, lr=cfg['lr'], momentum=0.9,
                          weight_decay=5e-4)
    aug = BatchAugment(28, crop_scale=(cfg['crop_min'], 1.0), flip_prob=0.5,
                       brightness=0.4, contrast=0.4, jitter_prob=0.8,
                       num_views=1, value_max=255.0, seed=cfg['seed'])
    return net, task, opt, aug


def step(net, task, opt, aug, x):
    views = aug(x)
    x = views[0] if isinstance(views, (list, tuple)) else views
    x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        loss, acc = task.loss(net, x)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss, acc


def setting(name):
    """The config of a setting name, ``NAME`` or ``NAME@SEED``."""
    base, _, seed = name.partition('@')
    cfg = {**DEFAULT, **SETTINGS[base]}
    if seed:
        cfg['seed'] = int(seed)
    return cfg


def run(name, cfg, data_root, device):
    train_x, train_y = load_split(data_root, 'train')
    test_x, test_y = load_split(data_root, 'test')
    net, task, opt, aug = build(cfg, device)
    train_dev = train_x.to(device)[:, None]  # uint8 (N, 1, 28, 28)
    bs, n = 256, len(train_x)
    iters = n // bs  # drop_last
    if os.environ.get('SWEEP_SMOKE'):  # a few iterations, to test the script
        iters, cfg['epochs'] = 20, min(cfg['epochs'], 1)
    log, t0, it = [], time.time(), 0
    for epoch in range(cfg['epochs']):
        cos = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch /
                                                cfg['epochs']))
        perm = torch.randperm(n, device=device)
        accs = []
        for b in range(iters):
            warm = 0.1 + 0.9 * it / 200 if it < 200 else 1.0
            for g in opt.param_groups:
                g['lr'] = cfg['lr'] * cos * warm
            loss, acc = step(net, task, opt, aug,
                             train_dev[perm[b * bs:(b + 1) * bs]])
            if b % 20 == 0:
                accs.append(float(acc))
            it += 1
        entry = dict(epoch=epoch + 1, loss=float(loss.detach()),
                     task_acc=sum(accs) / len(accs),
                     minutes=(time.time() - t0) / 60)
        log.append(entry)
        print(name, ' '.join(f'{k}={v:.4g}' for k, v in entry.items()),
              flush=True)
    if os.environ.get('SWEEP_SMOKE'):
        train_x, train_y = train_x[:2000], train_y[:2000]
        test_x, test_y = test_x[:500], test_y[:500]
    res = dict(name=name, cfg=cfg, log=log)
    res['nonfinite_params'] = sum(int(not torch.isfinite(p).all())
                                  for p in net.parameters())
    tr, te = (pooled_features(net, x, device) for x in (train_x, test_x))
    acc = readout(tr, train_y, te, test_y, num_classes=10)
    res.update(knn20=acc['knn_k20'], knn200=acc['knn_k200'],
               probe=acc['linear'])
    if cfg['task'] in ('relloc', 'jigsaw', 'none'):
        tr, te = (pooled_features(net, x, device, size=56)
                  for x in (train_x, test_x))
        acc = readout(tr, train_y, te, test_y, probe=False, num_classes=10)
        res.update(knn20_at56=acc['knn_k20'], knn200_at56=acc['knn_k200'])
    res['minutes'] = (time.time() - t0) / 60
    return res


def time_steps(names, data_root, steps=6, warmup=2):
    """Seconds per training step on this machine's CPU (2 threads)."""
    torch.set_num_threads(2)
    train_x, _ = load_split(data_root, 'train')
    device = torch.device('cpu')
    for name in names:
        cfg = setting(name)
        if cfg['task'] == 'none':
            continue
        net, task, opt, aug = build(cfg, device)
        x = train_x[:256, None]
        for _ in range(warmup):
            step(net, task, opt, aug, x)
        t = time.perf_counter()
        for _ in range(steps):
            step(net, task, opt, aug, x)
        sec = (time.perf_counter() - t) / steps
        print(f'{name:32s} {sec:.3f} s/step, {sec * 234 / 60:.1f} min/epoch',
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--parallel', type=int, default=10)
    parser.add_argument('--only', nargs='*', default=None)
    parser.add_argument('--time', nargs='*', default=None)
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.only or list(SETTINGS) + SEED_CHECKS
    unknown = [n for n in names + (args.time or [])
               if n.partition('@')[0] not in SETTINGS]
    if unknown:
        parser.error(f'unknown settings {unknown}; known: {list(SETTINGS)}')
    if args.time is not None:
        time_steps(args.time or names, args.data_root)
        return
    if not args.out:
        parser.error('--out is required to run settings')
    if args.one:  # a child process: one setting
        res = run(args.one, setting(args.one), args.data_root,
                  torch.device(args.device))
        with open(args.out, 'w') as f:
            json.dump(res, f)
        return
    results = run_side_by_side(__file__, names, args.out, args.device,
                               args.parallel,
                               extra=('--data-root', args.data_root))
    for r in sorted(results, key=lambda r: -r['knn200']):
        print(f'{r["name"]:32s} k=20 {r["knn20"]:6.2f} k=200 '
              f'{r["knn200"]:6.2f} probe {r["probe"]:6.2f}')


if __name__ == '__main__':
    main()
