"""NPID speed and memory benchmarks (numbers go to benchmarks/reports/npid.md).

    python benchmarks/npid_benchmark.py [--device cpu|cuda] [--quick]

(a) NPID train step vs backbone-only train step: ResNet-18, batch 256,
    m = 4096 noise samples, a 60k-row bank (and the full softmax over 60k and
    1.28M rows); the same backbone + neck, the same SGD step, the only
    difference is the NPID loss and bank update versus a trivial loss on the
    embedding. Target ratio <= 1.05.
(b) Our NCE head (forward + backward) vs a lemniscate-style head that
    gathers a (B, m+1, D) block of bank rows, computes exp(l/tau)/Z and the
    NCE criterion with explicit probabilities. Target >= 3x faster.
(c) Our chunked weighted kNN vs lightly's ``knn_predict`` on the same 10k
    queries x 60k bank: predictions compared, time and peak memory.

Every ratio is measured in the same run against a baseline timed
alternately with it (median of repeated timings).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def timeit(fn, device, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def alternate(fns, device, repeat, warmup=2):
    """Time several functions interleaved (robust to a drifting machine)."""
    for f in fns:
        for _ in range(warmup):
            f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            sync(device)
            t = time.perf_counter()
            f()
            sync(device)
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


# --------------------------------------------------------------------- (a)
# name -> (NPIDLoss settings, bank rows N)
TRAIN_STEP_HEADS = {
    'shared': (dict(mode='nce', shared_negatives=True), 60000),
    'per_sample': (dict(mode='nce'), 60000),
    'per_sample_rows': (dict(mode='nce', dense_logits_limit=0), 60000),
    'sampled_softmax': (dict(mode='sampled_softmax'), 60000),
    'softmax_60k': (dict(mode='softmax'), 60000),
    'softmax_1.28M': (dict(mode='softmax'), 1281167),
}


def bench_train_step(args, device):
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mm_instdisc.models  # noqa: F401
    B, m = args.batch, 4096
    width = args.width
    results = {}
    for key in args.heads:
        head, N = TRAIN_STEP_HEADS[key]
        torch.manual_seed(0)
        cfg = dict(
            type='NPID', bank_size=N, feat_dim=128,
            data_preprocessor=dict(type='SelfSupDataPreprocessor'),
            backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=3,
                          stem_channels=width, base_channels=width),
            neck=dict(type='LinearNeck', in_channels=width * 8,
                      out_channels=128, gap_dim=2, norm_cfg=None),
            head=dict(type='LossHead', loss=dict(
                type='NPIDLoss', num_negatives=m, temperature=0.07, **head)))
        model = MODELS.build(cfg).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
        x = torch.randn(B, 3, args.size, args.size, device=device)
        samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(B)]
        perm = torch.randperm(N)

        step_no = [0]

        def npid_step():
            s = step_no[0] = step_no[0] + 1
            idx = perm[(s * B) % (N - B):(s * B) % (N - B) + B].tolist()
            for d, i in zip(samples, idx):
                d.set_metainfo(dict(sample_idx=i))
            loss = model.loss([x], samples)['loss']
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.flush_bank_update()

        def backbone_step():
            f = F.normalize(model.neck(model.backbone(x))[0], dim=1)
            loss = -f.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        t_npid, t_base = alternate([npid_step, backbone_step], device,
                                   args.repeat)
        results[key] = dict(npid_s=t_npid, backbone_s=t_base,
                            ratio=t_npid / t_base, bank_rows=N)
        print(f'(a) NPID step ({key}, N={N}) {t_npid * 1e3:.1f} ms, '
              f'backbone-only {t_base * 1e3:.1f} ms, ratio '
              f'{t_npid / t_base:.3f}', flush=True)
    return results


# --------------------------------------------------------------------- (b)
class LemniscateStyleNCE(torch.nn.Module):
    """The reference code's approach: gather (B, m+1, D) rows, bmm,
    exp(l/T)/Z with Z estimated once, NCE criterion on probabilities."""

    def __init__(self, n, m, tau):
        super().__init__()
        self.n, self.m, self.tau, self.z = n, m, tau, -1.0

    def forward(self, x, y, memory):
        B, D = x.shape
        idx = torch.randint(0, self.n, (B, self.m + 1), device=x.device)
        idx[:, 0] = y
        weight = memory.index_select(0, idx.view(-1)).detach().view(
            B, self.m + 1, D)
        out = torch.bmm(weight, x.view(B, D, 1)).squeeze(2)
        out = torch.exp(out / self.tau)
        if self.z < 0:
            self.z = (out.mean() * self.n).item()
        out = out / self.z
        pn, eps = 1.0 / self.n, 1e-7
        p_pos = out[:, 0]
        lnpmt = torch.log(p_pos / (p_pos + self.m * pn + eps))
        p_neg = out[:, 1:]
        lnpon = torch.log(self.m * pn / (p_neg + self.m * pn + eps))
        return -(lnpmt.sum() + lnpon.sum()) / B


def bench_nce_head(args, device):
    from mm_instdisc.modules import NPIDLoss
    B, m, N, D = args.batch, 4096, 60000, 128
    torch.manual_seed(0)
    bank = F.normalize(torch.randn(N, D, device=device), dim=1)
    f = F.normalize(torch.randn(B, D, device=device), dim=1).requires_grad_()
    y = torch.randint(0, N, (B, ), device=device)
    ours_shared = NPIDLoss('nce', m, 0.07, shared_negatives=True).to(device)
    ours_row = NPIDLoss('nce', m, 0.07, shared_negatives=False).to(device)
    ours_gather = NPIDLoss('nce', m, 0.07, dense_logits_limit=0).to(device)
    ref = LemniscateStyleNCE(N, m, 0.07)

    def run(fn):
        def step():
            f.grad = None
            fn(f, y, bank).backward()
        return step

    t_ref, t_row, t_gather, t_shared = alternate(
        [run(ref), run(ours_row), run(ours_gather), run(ours_shared)], device,
        args.repeat * 3)
    print(f'(b) NCE head fwd+bwd: lemniscate-style {t_ref * 1e3:.2f} ms, ours '
          f'per-sample {t_row * 1e3:.2f} ms ({t_ref / t_row:.2f}x; (B, N) '
          f'product + gather), per-sample with (B, m, D) row gather '
          f'{t_gather * 1e3:.2f} ms ({t_ref / t_gather:.2f}x), ours shared '
          f'{t_shared * 1e3:.2f} ms ({t_ref / t_shared:.2f}x)', flush=True)
    return dict(lemniscate_ms=t_ref * 1e3, ours_per_sample_ms=t_row * 1e3,
                ours_per_sample_row_gather_ms=t_gather * 1e3,
                ours_shared_ms=t_shared * 1e3,
                speedup_per_sample=t_ref / t_row,
                speedup_per_sample_row_gather=t_ref / t_gather,
                speedup_shared=t_ref / t_shared)


# --------------------------------------------------------------------- (c)
def _knn_child(method, q_n, n, d, device, conn):
    import resource
    torch.manual_seed(0)
    bank = F.normalize(torch.randn(n, d, device=device), dim=1)
    # queries near bank rows, so neighbours are meaningful
    q = F.normalize(bank[:q_n] + 0.5 * torch.randn(q_n, d, device=device), dim=1)
    labels = torch.randint(0, 10, (n, ), device=device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sync(device)
    t = time.perf_counter()
    if method == 'ours':
        from mm_instdisc.modules import weighted_knn
        pred = weighted_knn(q, bank, labels, 10, ks=(200, ),
                            temperature=0.07)[200].argmax(1)
    else:
        from lightly.utils.benchmarking import knn_predict
        pred = knn_predict(q, bank.t().contiguous(), labels, 10, knn_k=200,
                           knn_t=0.07)[:, 0]
    sync(device)
    dt = time.perf_counter() - t
    if device == 'cuda':
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    conn.send((dt, peak, pred.cpu().numpy()))  # plain pickle, no shared fd


def bench_knn(args, device):
    import multiprocessing as mp
    ctx = mp.get_context('spawn')
    out = {}
    for rep in range(args.knn_repeat):
        for method in ('ours', 'lightly'):
            a, b = ctx.Pipe()
            p = ctx.Process(target=_knn_child,
                            args=(method, 10000, 60000, 128, device, b))
            p.start()
            dt, peak, pred = a.recv()
            pred = torch.from_numpy(pred)
            p.join()
            o = out.setdefault(method, dict(times=[], peak_mb=0, pred=pred))
            o['times'].append(dt)
            o['peak_mb'] = max(o['peak_mb'], peak)
    same = torch.equal(out['ours']['pred'], out['lightly']['pred'])
    agree = (out['ours']['pred'] == out['lightly']['pred']).float().mean().item()
    t_o = statistics.median(out['ours']['times'])
    t_l = statistics.median(out['lightly']['times'])
    print(f'(c) kNN 10k x 60k: ours {t_o:.2f} s, peak +{out["ours"]["peak_mb"]:.0f}'
          f' MB; lightly {t_l:.2f} s, peak +{out["lightly"]["peak_mb"]:.0f} MB; '
          f'speed-up {t_l / t_o:.2f}x; identical predictions: {same} '
          f'({100 * agree:.2f}% agree)', flush=True)
    return dict(ours_s=t_o, lightly_s=t_l, speedup=t_l / t_o,
                ours_peak_mb=out['ours']['peak_mb'],
                lightly_peak_mb=out['lightly']['peak_mb'],
                identical=same, agreement=agree)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--size', type=int, default=32, help='input resolution')
    p.add_argument('--width', type=int, default=64,
                   help='ResNet-18 base width (64 = standard)')
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--knn-repeat', type=int, default=3)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--only', nargs='+', default=['a', 'b', 'c'])
    p.add_argument('--heads', nargs='+', default=list(TRAIN_STEP_HEADS),
                   choices=list(TRAIN_STEP_HEADS),
                   help='(a): which NPID heads to time against the backbone')
    p.add_argument('--out', default=None, help='write results as JSON')
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    name = torch.cuda.get_device_name() if dev == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'device: {name}; torch {torch.__version__}; batch {args.batch}, '
          f'ResNet-18 width {args.width} at {args.size}px', flush=True)
    res = dict(device=name, args=vars(args))
    if 'a' in args.only:
        res['train_step'] = bench_train_step(args, dev)
    if 'b' in args.only:
        res['nce_head'] = bench_nce_head(args, dev)
    if 'c' in args.only:
        res['knn'] = bench_knn(args, dev)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2, default=str)


if __name__ == '__main__':
    main()
