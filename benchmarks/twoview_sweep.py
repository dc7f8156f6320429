"""Hyper-parameter sweep of the two-view Fashion-MNIST recipes on a GPU.

    python benchmarks/twoview_sweep.py --data-root DIR --out sweep.json \\
        [--device cuda] [--parallel 8] [--only NAME ...]

The recipes (configs/*/..._1xb256-bf16-cos-15min_fashion-mnist.py) must fit
15 minutes on a 2-core CPU, so each setting costs a quarter of an hour there.
This script replays the recipe's training in plain PyTorch (no OpenMMLab: the
GPU machine has only torch) so that many settings can be compared in
minutes: the same network (mmpretrain's ResNet_CIFAR, depth 18, stem/base 32,
strides 2,2,2,2, one input channel; MoCo v2 neck 256-256-128), the same batch
augmentation (mm_instdisc.modules.BatchAugment, two views), bf16 autocast,
SGD lr 0.06 (momentum 0.9, wd 5e-4), 200 warm-up iterations, cosine to
0.0006 per epoch, batch 256, key encoder m 0.99, and mm_instdisc's AdCoLoss /
AdversarialNegatives (negatives: SGD with maximize=True) or a MoCo queue.

It reads out the weighted kNN (k=20, 200; tau 0.07) of the backbone's pooled
features of the 10k test images against all 60k training images, as the
recipes benchmark does. It is for *ranking* settings: the OpenMMLab run of
the chosen one on the CPU is what the recipes report publishes.
"""
import argparse
import copy
import json
import math
import os
import time

import _path  # noqa: F401  (sys.path: the checkout; the GPU machine has no install)

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.lib.replay import (MEAN, STD, backbone, load_split,
                                   pooled_features, run_side_by_side)
from mm_instdisc.modules import (AdCoLoss, AdversarialNegatives, BatchAugment,
                                 readout)

# name -> overrides of DEFAULT
DEFAULT = dict(method='adco', epochs=10, t=0.12, mem_t=0.1, neg_lr=3.0,
               num_neg=8192, lr=0.06, crop_min=0.2, seed=0,
               neg_lr_schedule=True, reset_keys=False)
SETTINGS = {
    'mocov2_t0.1': dict(method='moco', t=0.1),
    'adco_memt0.1_lr3_8ep': dict(epochs=8),
    'adco_memt0.1_lr3': dict(),
    'adco_memt0.07_lr3': dict(mem_t=0.07),
    'adco_memt0.05_lr3': dict(mem_t=0.05),
    'adco_memt0.1_lr1': dict(neg_lr=1.0),
    'adco_memt0.1_lr0.3': dict(neg_lr=0.3),
    'adco_memt0.05_lr1': dict(mem_t=0.05, neg_lr=1.0),
    'adco_memt0.1_lr3_t0.1': dict(t=0.1),
    'adco_memt0.1_lr3_t0.2': dict(t=0.2),
    'adco_memt0.07_lr1_t0.1': dict(mem_t=0.07, neg_lr=1.0, t=0.1),
    'adco_memt0.1_lr3_k16384': dict(num_neg=16384),
    'adco_memt0.1_lr3_k4096': dict(num_neg=4096),
    'adco_fixed_memt0.1': dict(neg_lr=0.0),
    'adco_memt0.1_lr3_crop0.3': dict(crop_min=0.3),
    'mocov2_t0.1_crop0.3': dict(method='moco', t=0.1, crop_min=0.3),
    'adco_memt0.05_lr0.5': dict(mem_t=0.05, neg_lr=0.5),
    'adco_memt0.03_lr1': dict(mem_t=0.03, neg_lr=1.0),
    'adco_memt0.05_lr2': dict(mem_t=0.05, neg_lr=2.0),
    'adco_memt0.1_lr1_crop0.3': dict(neg_lr=1.0, crop_min=0.3),
    'adco_memt0.05_lr1_crop0.3': dict(mem_t=0.05, neg_lr=1.0, crop_min=0.3),
    'adco_memt0.05_lr1_t0.2': dict(mem_t=0.05, neg_lr=1.0, t=0.2),
}
# second sweep: the negatives' lr constant (as AdCoNegativesInitHook pins
# it, after the official code), the key encoder reset to the query encoder
# when the negatives are filled (as the AdCo model), 9 epochs (the recipe's)
for _mem_t in (0.1, 0.05, 0.03):
    for _lr in (3.0, 1.0, 0.5, 0.3, 0.1):
        SETTINGS[f'c9_memt{_mem_t}_lr{_lr}'] = dict(
            mem_t=_mem_t, neg_lr=_lr, neg_lr_schedule=False, epochs=9,
            reset_keys=True)
SETTINGS['c8_memt0.1_lr3.0'] = dict(neg_lr_schedule=False, epochs=8,
                                    reset_keys=True)
SETTINGS['c9_fixed'] = dict(neg_lr=0.0, neg_lr_schedule=False, epochs=9,
                            reset_keys=True)
SETTINGS['c9_mocov2_t0.1'] = dict(method='moco', t=0.1, epochs=9)


def encoder():
    return nn.Sequential(backbone(), nn.Linear(256, 256), nn.ReLU(inplace=True),
                         nn.Linear(256, 128))


def run(name, cfg, data_root, device):
    cfg = {**DEFAULT, **cfg}
    torch.manual_seed(cfg['seed'])
    train_x, train_y = load_split(data_root, 'train')
    test_x, test_y = load_split(data_root, 'test')
    train_gpu = train_x.to(device)[:, None]  # uint8 (N, 1, 28, 28)
    aug = BatchAugment(28, crop_scale=(cfg['crop_min'], 1.0), flip_prob=0.5,
                       brightness=0.4, contrast=0.4, jitter_prob=0.8,
                       num_views=2, value_max=255.0, seed=cfg['seed'])
    q_enc = encoder().to(device).to(memory_format=torch.channels_last)
    k_enc = copy.deepcopy(q_enc)
    for p in k_enc.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(q_enc.parameters(), lr=cfg['lr'], momentum=0.9,
                          weight_decay=5e-4)
    K = cfg['num_neg']
    if cfg['method'] == 'adco':
        negs = AdversarialNegatives(K, 128, init='keys').to(device)
        loss_fn = AdCoLoss(cfg['t'], cfg['mem_t'], batch_negatives=True)
        neg_opt = torch.optim.SGD(negs.parameters(), lr=cfg['neg_lr'],
                                  momentum=0.9, weight_decay=1e-4,
                                  maximize=True)
        base_lrs = [cfg['lr'], cfg['neg_lr']]
        opts = [opt, neg_opt]
    else:
        queue = F.normalize(torch.randn(K, 128, device=device), dim=1)
        ptr = 0
        base_lrs, opts = [cfg['lr']], [opt]
    bs, n = 256, len(train_x)
    iters_per_epoch = n // bs  # drop_last
    if os.environ.get('SWEEP_SMOKE'):  # a few iterations, to test the script
        iters_per_epoch, cfg['epochs'] = 40, 1
        train_x, train_y = train_x[:2000], train_y[:2000]
        test_x, test_y = test_x[:500], test_y[:500]
    log = []
    t0 = time.time()
    it = 0
    for epoch in range(cfg['epochs']):
        # cosine per epoch (by_epoch) to 1% of the base lr, linear warm-up
        cos = 0.01 + 0.99 * 0.5 * (
            1 + math.cos(math.pi * epoch / cfg['epochs']))
        perm = torch.randperm(n, device=device)
        stats = []
        for b in range(iters_per_epoch):
            warm = 0.1 + 0.9 * min(it, 200) / 200 if it < 200 else 1.0
            for i, (o, lr) in enumerate(zip(opts, base_lrs)):
                if i == 1 and not cfg['neg_lr_schedule']:
                    continue  # the negatives' lr stays constant
                for g in o.param_groups:
                    g['lr'] = lr * cos * warm
            x = train_gpu[perm[b * bs:(b + 1) * bs]]
            v1, v2 = ((v - MEAN) / STD for v in aug(x))
            v1 = v1.contiguous(memory_format=torch.channels_last)
            v2 = v2.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():  # key encoder EMA, m = 0.99
                for pk, pq in zip(k_enc.parameters(), q_enc.parameters()):
                    pk.mul_(0.99).add_(pq.detach(), alpha=0.01)
                for bk, bq in zip(k_enc.buffers(), q_enc.buffers()):
                    bk.copy_(bq)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                q = F.normalize(q_enc(v1).float(), dim=1)
                with torch.no_grad():
                    k = F.normalize(k_enc(v2).float(), dim=1)
            if cfg['method'] == 'adco':
                if not negs.initialised:
                    negs.init_from_keys(k)
                    if negs.initialised and cfg['reset_keys']:  # as AdCo
                        k_enc.load_state_dict(q_enc.state_dict())
                    enc, _ = loss_fn(q, k, negs().detach(),
                                     batch_negatives=False)
                    opt.zero_grad(set_to_none=True)
                    enc.backward()
                    opt.step()
                else:
                    w = negs()
                    enc, adv = loss_fn(q, k, w)
                    opt.zero_grad(set_to_none=True)
                    neg_opt.zero_grad(set_to_none=True)
                    (enc + adv).backward()
                    opt.step()
                    if cfg['neg_lr'] > 0:
                        neg_opt.step()
                    if b % 50 == 0:
                        s = loss_fn.negatives_stats(q.detach(), k, w.detach())
                        stats.append({k_: float(v) for k_, v in s.items()})
            else:
                logits = torch.cat([(q * k).sum(1, keepdim=True),
                                    q @ queue.t()], 1) / cfg['t']
                enc = F.cross_entropy(
                    logits, torch.zeros(bs, dtype=torch.long, device=device))
                opt.zero_grad(set_to_none=True)
                enc.backward()
                opt.step()
                with torch.no_grad():
                    queue[ptr:ptr + bs] = k
                    ptr = (ptr + bs) % K
            it += 1
        entry = dict(epoch=epoch + 1, loss=float(enc.detach()),
                     minutes=(time.time() - t0) / 60)
        if stats:
            entry.update({key: sum(s[key] for s in stats) / len(stats)
                          for key in stats[0]})
        log.append(entry)
        print(name, ' '.join(f'{k}={v:.4g}' for k, v in entry.items()),
              flush=True)
    tr, te = (pooled_features(q_enc[0], x, device)
              for x in (train_x, test_x))
    acc = readout(tr, train_y, te, test_y, probe=False, num_classes=10)
    return dict(name=name, cfg=cfg, knn20=acc['knn_k20'],
                knn200=acc['knn_k200'], log=log,
                minutes=(time.time() - t0) / 60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--parallel', type=int, default=8)
    parser.add_argument('--only', nargs='*', default=None)
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one setting
        name, cfg = args.one, SETTINGS[args.one.split('@')[0]]
        if '@' in name:
            cfg = {**cfg, 'seed': int(name.split('@')[1])}
        res = run(name, cfg, args.data_root, torch.device(args.device))
        with open(args.out, 'w') as f:
            json.dump(res, f)
        return
    names = args.only or list(SETTINGS)
    results = run_side_by_side(__file__, names, args.out, args.device,
                               args.parallel,
                               extra=('--data-root', args.data_root))
    for r in sorted(results, key=lambda r: -r['knn200']):
        print(f'{r["name"]:32s} k=20 {r["knn20"]:6.2f} k=200 {r["knn200"]:6.2f}')


if __name__ == '__main__':
    main()
