"""GPU checks of the plain-PyTorch maths (no OpenMMLab needed).

    python benchmarks/gpu_checks.py [--device cuda] [--quick] [--out gpu_checks.json]

1. Losses under CUDA autocast (fp16, bf16) vs a float64 reference written
   here: NPID (softmax, sampled softmax, NCE with Z per sample), AdCo (both
   players), Exemplar, SplitMask InfoNCE; relative error of the value and of
   the gradient w.r.t. the features, and the output dtype.
2. BatchAugment throughput on the device (crop + flip + colour jitter + blur)
   vs torchvision's per-sample v2 transforms on the CPU (one process), for
   Fashion-MNIST-sized (1x28x28) and ImageNet-sized (3x224x224) batches.
3. NPID step time on the device: a ResNet-50 (torchvision) train step at
   batch 256, 224x224, bf16 autocast, channels_last, alone and with each loss
   over an ImageNet-sized bank (N = 1,281,167 x 128): full softmax (chunked,
   exact), sampled softmax (8192 shared negatives), NCE (4096 per sample);
   ratio step-with-loss / backbone-only step, measured in the same run.
4. The sharded-bank functions in one process on the device equal the
   replicated computation (world size 1).

Prints each number and writes them to --out as JSON.
"""
import argparse
import json
import os
import time

import _path  # noqa: F401  (sys.path: the checkout; the GPU machine has no install)

import torch
import torch.nn.functional as F

from mm_instdisc.modules import (AdCoLoss, BatchAugment, ExemplarLoss,
                                 NPIDLoss, ShardedMemoryBank, sharded_knn_topk,
                                 sharded_softmax_loss)
from mm_instdisc.modules.npid_loss import softmax_over_bank
from mm_instdisc.modules.splitmask import info_nce

RESULTS = {}


def record(key, value):
    RESULTS[key] = value
    print(f'{key}: {value}', flush=True)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, reps, warmup=3):
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - t) / reps


def leaf(t, device=None, dtype=None):
    """A fresh autograd leaf copy of ``t``."""
    t = t.detach().clone()
    if device is not None:
        t = t.to(device)
    if dtype is not None:
        t = t.to(dtype)
    return t.requires_grad_()


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


# ------------------------------------------------------------ 1. numerics
def check_losses(device, quick):
    n, d, b = (2000, 128, 64) if quick else (50000, 128, 256)
    g = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.randn(n, d, generator=g), dim=1)
    feats = F.normalize(torch.randn(b, d, generator=g), dim=1)
    idx = torch.randint(0, n, (b, ), generator=g)

    def ref_softmax(f, bk):
        return F.cross_entropy(f @ bk.t() / 0.07, idx.to(f.device))

    for dtype in (torch.float16, torch.bfloat16):
        name = str(dtype).split('.')[-1]
        for mode in ('softmax', 'sampled_softmax', 'nce'):
            loss_fn = NPIDLoss(mode=mode, num_negatives=1024, temperature=0.07,
                               shared_negatives=(mode == 'sampled_softmax'),
                               chunk_size=8192).to(device)
            gen_state = torch.get_rng_state()
            f = leaf(feats, device)
            with torch.autocast(device.type, dtype=dtype):
                out = loss_fn(f.to(dtype), idx.to(device), bank.to(device))
            out.backward()
            torch.set_rng_state(gen_state)  # same negatives for the reference
            ref_fn = NPIDLoss(mode=mode, num_negatives=1024, temperature=0.07,
                              shared_negatives=(mode == 'sampled_softmax'),
                              chunk_size=8192).double()
            f64 = leaf(feats, dtype=torch.float64)
            ref = ref_fn(f64, idx, bank.double())
            ref.backward()
            record(f'numerics/npid_{mode}/{name}', dict(
                dtype=str(out.dtype), finite=bool(torch.isfinite(out)),
                value_rel_err=rel(out.detach().cpu(), ref.detach()),
                grad_rel_err=rel(f.grad.cpu(), f64.grad)))
        # AdCo: both players
        negs = F.normalize(torch.randn(d, 4096, generator=g), dim=0)
        keys = F.normalize(torch.randn(b, d, generator=g), dim=1)
        q = leaf(feats, device)
        w = leaf(negs, device)
        with torch.autocast(device.type, dtype=dtype):
            enc, adv = AdCoLoss(0.12, 0.02)(q.to(dtype), keys.to(device),
                                            w.to(dtype))
        (enc + adv).backward()
        q64 = leaf(feats, dtype=torch.float64)
        w64 = leaf(negs, dtype=torch.float64)
        e64, a64 = AdCoLoss(0.12, 0.02)(q64, keys.double(), w64)
        (e64 + a64).backward()
        record(f'numerics/adco/{name}', dict(
            dtype=str(enc.dtype), enc_rel_err=rel(enc.detach().cpu(), e64.detach()),
            adv_rel_err=rel(adv.detach().cpu(), a64.detach()),
            grad_q_rel_err=rel(q.grad.cpu(), q64.grad),
            grad_neg_rel_err=rel(w.grad.cpu(), w64.grad)))
        # Exemplar
        queue = F.normalize(torch.randn(4096, d, generator=g), dim=1)
        labels = torch.randint(0, 10, (b, ), generator=g)
        qlab = torch.randint(0, 10, (4096, ), generator=g)
        q = leaf(feats, device)
        with torch.autocast(device.type, dtype=dtype):
            ex = ExemplarLoss(0.07)(q.to(dtype), keys.to(device),
                                    queue.to(device), labels.to(device),
                                    qlab.to(device))
        ex.backward()
        q64 = leaf(feats, dtype=torch.float64)
        ex64 = ExemplarLoss(0.07)(q64, keys.double(), queue.double(), labels,
                                  qlab)
        ex64.backward()
        record(f'numerics/exemplar/{name}', dict(
            dtype=str(ex.dtype), value_rel_err=rel(ex.detach().cpu(), ex64.detach()),
            grad_rel_err=rel(q.grad.cpu(), q64.grad)))
        # SplitMask InfoNCE
        q = leaf(feats, device)
        with torch.autocast(device.type, dtype=dtype):
            nce = info_nce(q.to(dtype), keys.to(device).to(dtype), 0.2)
        nce.backward()
        q64 = leaf(feats, dtype=torch.float64)
        nce64 = info_nce(q64, keys.double(), 0.2)
        nce64.backward()
        record(f'numerics/splitmask_info_nce/{name}', dict(
            dtype=str(nce.dtype), value_rel_err=rel(nce.detach().cpu(), nce64.detach()),
            grad_rel_err=rel(q.grad.cpu(), q64.grad)))
    del ref_softmax


# ------------------------------------------------------------ 2. augmentation
def check_augment(device, quick):
    from torchvision.transforms import v2
    for name, (c, h, batch, crop) in {
            'fmnist_1x28': (1, 28, 256, 28),
            'imagenet_3x224': (3, 256, 64 if quick else 256, 224)}.items():
        x = torch.randint(0, 256, (batch, c, h, h), dtype=torch.uint8)
        aug = BatchAugment(crop, crop_scale=(0.2, 1.0), brightness=0.4,
                           contrast=0.4, saturation=0.4 if c == 3 else 0.0,
                           hue=0.1 if c == 3 else 0.0, jitter_prob=0.8,
                           grayscale_prob=0.2 if c == 3 else 0.0,
                           blur_prob=0.5, num_views=2, seed=0).to(device)
        xd = x.to(device)
        reps = 5 if quick else 20
        t_dev = timed(lambda: aug(xd.float()), device, reps)
        per_sample = v2.Compose([
            v2.RandomResizedCrop(crop, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4 if c == 3 else 0,
                                           0.1 if c == 3 else 0)], p=0.8),
            v2.RandomApply([v2.GaussianBlur(23 if crop > 100 else 3,
                                            (0.1, 2.0))], p=0.5)])
        n_cpu = min(batch, 64)
        t0 = time.perf_counter()
        for i in range(n_cpu):
            for _ in range(2):
                per_sample(x[i])
        t_cpu = (time.perf_counter() - t0) / n_cpu * batch
        record(f'augment/{name}', dict(
            batch=batch, views=2, device_img_s=2 * batch / t_dev,
            cpu_per_sample_img_s_one_process=2 * batch / t_cpu,
            ratio=t_cpu / t_dev))


# ------------------------------------------------------------ 3. NPID steps
def check_npid_steps(device, quick):
    import torchvision
    n = 20000 if quick else 1_281_167
    batch, size = (32, 112) if quick else (256, 224)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=128).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    bank = F.normalize(torch.randn(n, 128, device=device), dim=1)
    x = torch.randn(batch, 3, size, size, device=device).to(
        memory_format=torch.channels_last)
    idx = torch.randint(0, n, (batch, ), device=device)
    losses = {
        'backbone_only': None,
        'softmax_exact': NPIDLoss('softmax', temperature=0.07,
                                  chunk_size=262144),
        'sampled_softmax_8192': NPIDLoss('sampled_softmax', 8192, 0.07,
                                         shared_negatives=True),
        'nce_4096': NPIDLoss('nce', 4096, 0.07),
        'backbone_only_again': None,  # brackets the others (drift, clocks)
    }
    times = {}
    for name, loss_fn in losses.items():
        if loss_fn is not None:
            loss_fn = loss_fn.to(device)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                f = F.normalize(model(x).float(), dim=1)
            loss = f.sum() * 0 if loss_fn is None else loss_fn(f, idx, bank)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times[name] = timed(step, device, 3 if quick else 20)
    base = 0.5 * (times['backbone_only'] + times['backbone_only_again'])
    record('npid_steps', dict(
        bank_rows=n, batch=batch, image=size, step_ms={
            k: v * 1000 for k, v in times.items()},
        ratio_to_backbone={k: v / base for k, v in times.items()},
        img_s={k: batch / v for k, v in times.items()}))


# ------------------------------------------------------------ 4. sharded
def check_sharded(device):
    if not torch.distributed.is_initialized():
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29533')
        torch.distributed.init_process_group('gloo', rank=0, world_size=1)
    n, d, b = 5000, 128, 64
    g = torch.Generator().manual_seed(1)
    full = F.normalize(torch.randn(n, d, generator=g), dim=1).to(device)
    feats = F.normalize(torch.randn(b, d, generator=g), dim=1).to(device)
    idx = torch.randint(0, n, (b, ), generator=g).to(device)
    bank = ShardedMemoryBank(n, d).to(device)
    bank.load_full(full)
    f1 = leaf(feats)
    l1 = sharded_softmax_loss(f1, idx, bank, 0.07, chunk_size=1000)
    l1.sum().backward()
    f2 = leaf(feats)
    l2 = softmax_over_bank(f2, idx, full, 0.07, chunk_size=n)
    l2.sum().backward()
    s, i = sharded_knn_topk(feats, bank, 20)
    ref_s, ref_i = (feats @ full.t()).topk(20, dim=1)
    record('sharded_world1', dict(
        loss_max_abs_diff=float((l1 - l2).detach().abs().max()),
        grad_max_abs_diff=float((f1.grad - f2.grad).abs().max()),
        knn_same_neighbours=bool(torch.equal(i, ref_i)),
        knn_sims_max_abs_diff=float((s - ref_s).abs().max())))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu')
    p.add_argument('--quick', action='store_true', help='small sizes')
    p.add_argument('--out', default='gpu_checks.json')
    p.add_argument('--only', nargs='+', default=None,
                   choices=['losses', 'augment', 'steps', 'sharded'])
    args = p.parse_args()
    device = torch.device(args.device)
    record('device', torch.cuda.get_device_name() if device.type == 'cuda'
           else 'cpu')
    record('torch', torch.__version__)
    todo = args.only or ['losses', 'augment', 'steps', 'sharded']
    for name, fn in (('losses', lambda: check_losses(device, args.quick)),
                     ('augment', lambda: check_augment(device, args.quick)),
                     ('sharded', lambda: check_sharded(device)),
                     ('steps', lambda: check_npid_steps(device, args.quick))):
        if name in todo:
            t = time.time()
            try:
                fn()
            except Exception as e:  # keep the other checks' numbers
                record(f'{name}/error', f'{type(e).__name__}: {e}')
            record(f'{name}/seconds', round(time.time() - t, 1))
            with open(args.out, 'w') as f:
                json.dump(RESULTS, f, indent=1)


if __name__ == '__main__':
    main()
