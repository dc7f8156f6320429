"""Memory bank scaling: sharded vs replicated, measured on CPU and projected.

    python benchmarks/bank_scaling.py [--length 200000] [--worlds 1 2 4]

Measured (gloo processes on this machine, one thread each): per-rank bank
memory and the time of one training step's bank work (full softmax loss
forward + backward over the bank, then the momentum update) with the bank
replicated on every rank (``MemoryBank`` + the chunked exact softmax, the
gradient all-reduced as DDP would) and sharded (``ShardedMemoryBank`` +
``sharded_softmax_loss``), at W = 1, 2, 4. Projected (computed, not run):
bank memory per GPU, all-reduce bytes per step and logits FLOPs for
N = 1.28M, 14.2M, 100M, 1B with W = 8, 64, 512.

Writes benchmarks/reports/scaling.md.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

import torch
import torch.multiprocessing as mp

from benchmarks.lib import ROOT


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--length', type=int, default=200_000, help='bank rows N')
    p.add_argument('--dim', type=int, default=128)
    p.add_argument('--batch', type=int, default=256, help='per rank')
    p.add_argument('--worlds', type=int, nargs='+', default=[1, 2, 4])
    p.add_argument('--steps', type=int, default=6)
    p.add_argument('--doc', default=osp.join(ROOT, 'benchmarks/reports/scaling.md'))
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs/bank_scaling.json'))
    return p.parse_args()


def _worker(rank, world, port, args, mode, out):
    import torch.distributed as dist
    import torch.nn.functional as F

    from mm_instdisc.modules import MemoryBank, ShardedMemoryBank
    from mm_instdisc.modules.npid_loss import softmax_over_bank
    from mm_instdisc.modules.sharded_memory_bank import sharded_softmax_loss
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    n, d, b = args.length, args.dim, args.batch
    if mode == 'sharded':
        bank = ShardedMemoryBank(n, d)
    else:
        bank = MemoryBank(n, d)
    bank_bytes = bank.bank.numel() * bank.bank.element_size()
    g = torch.Generator().manual_seed(rank)
    times = []
    for step in range(args.steps + 1):
        feats = F.normalize(torch.randn(b, d, generator=g), dim=1)
        feats.requires_grad_()
        idx = torch.randint(0, n, (b, ), generator=g)
        dist.barrier()
        t = time.perf_counter()
        if mode == 'sharded':
            loss = sharded_softmax_loss(feats, idx, bank, 0.07).mean()
            loss.backward()
            bank.update(idx, feats.detach())
        else:
            loss = softmax_over_bank(feats, idx, bank.bank, 0.07).mean()
            loss.backward()
            grad = feats.grad.clone()  # what DDP would all-reduce downstream
            dist.all_reduce(grad)
            bank.update(idx, feats.detach())  # all-gathers the batches
        dist.barrier()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t)
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(dict(step_s=statistics.median(times),
                           bank_bytes=bank_bytes), f)
    dist.destroy_process_group()


def measure(args):
    import socket
    import tempfile

    def free_port():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()[1]

    rows = []
    for world in args.worlds:
        row = dict(world=world)
        for mode in ('replicated', 'sharded'):
            out = tempfile.mktemp(suffix='.json')
            t = time.time()
            mp.spawn(_worker, args=(world, free_port(), args, mode, out),
                     nprocs=world)
            res = json.load(open(out))
            row[mode] = res
            print(f'W={world} {mode}: step {res["step_s"] * 1000:.1f} ms, '
                  f'bank {res["bank_bytes"] / 2**20:.1f} MiB per rank '
                  f'({time.time() - t:.0f} s)', flush=True)
        row['ratio'] = row['sharded']['step_s'] / row['replicated']['step_s']
        rows.append(row)
    return rows


def projection(d=128, batch_per_gpu=256):
    """Per step and GPU, full softmax over the bank, fp32 / bf16 storage."""
    out = []
    for n in (1_281_167, 14_197_122, 100_000_000, 1_000_000_000):
        for w in (8, 64, 512):
            shard = -(-n // w)
            b_tot = batch_per_gpu * w
            out.append(dict(
                N=n, W=w,
                replicated_gb=n * d * 4 / 1e9,
                sharded_gb_fp32=shard * d * 4 / 1e9,
                sharded_gb_bf16=shard * d * 2 / 1e9,
                # gathered queries + positives' rows + (max, sum) per query +
                # the backward's expected rows (B_tot x D) + update gather
                allreduce_mb=(b_tot * d * 4 * 3 + b_tot * 8 * 2) / 1e6,
                # forward logits + backward recompute and expectation:
                # 3 products of (B_tot x D) by (D x shard)
                tflops=3 * 2 * b_tot * d * shard / 1e12,
                replicated_tflops=3 * 2 * batch_per_gpu * d * n / 1e12))
    return out


def write_doc(args, rows):
    lines = [
        '# Memory bank scaling: sharded vs replicated', '',
        'Written by `.venv/bin/python benchmarks/bank_scaling.py` '
        f'(N = {args.length:,} rows x D = {args.dim}, batch {args.batch} per rank, '
        'full non-parametric softmax over the bank, forward + backward + momentum update; '
        f'gloo processes with one thread each on the 2-core CPU machine, median of {args.steps} '
        'steps after one warm-up). Replicated: every rank holds the whole bank (`MemoryBank`, '
        'chunked exact softmax over the local copy, gradient all-reduced, updates all-gathered). '
        'Sharded: `ShardedMemoryBank` + `sharded_softmax_loss` (each rank scores its rows for '
        'the gathered queries; distributed log-sum-exp). With more processes than cores (W=4 '
        'on 2 cores) the times include the processes waiting for a core.', '',
        '## Measured', '',
        '| W | bank per rank, replicated | bank per rank, sharded | step, replicated | '
        'step, sharded | sharded / replicated |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f'| {r["world"]} | {r["replicated"]["bank_bytes"] / 2**20:.1f} MiB | '
            f'{r["sharded"]["bank_bytes"] / 2**20:.1f} MiB | '
            f'{r["replicated"]["step_s"] * 1000:.1f} ms | '
            f'{r["sharded"]["step_s"] * 1000:.1f} ms | {r["ratio"]:.2f} |')
    lines += [
        '', '## Projected (computed, not run)', '',
        'Per GPU and step, D = 128, 256 images per GPU, full softmax. Bank memory: N x D x 4 bytes '
        'replicated; the shard ceil(N / W) x D in fp32 or bf16. All-reduce: gathered queries, '
        'positive rows and the backward\'s expected rows (3 x B_tot x D floats) plus the '
        'log-sum-exp statistics. Logits FLOPs: forward and the two backward products over the '
        'local rows (sharded: all B_tot = 256 W queries against N / W rows; replicated: the '
        'local 256 queries against all N).', '',
        '| N | W | bank/GPU replicated | bank/GPU sharded fp32 | sharded bf16 | all-reduce per '
        'step | logits TFLOP/GPU sharded | replicated |', '|---|---|---|---|---|---|---|---|']
    for p in projection(args.dim, args.batch):
        lines.append(
            f'| {p["N"]:,} | {p["W"]} | {p["replicated_gb"]:.2f} GB | '
            f'{p["sharded_gb_fp32"]:.3f} GB | {p["sharded_gb_bf16"]:.3f} GB | '
            f'{p["allreduce_mb"]:.1f} MB | {p["tflops"]:.3f} | '
            f'{p["replicated_tflops"]:.3f} |')
    lines += [
        '', 'The logits work per GPU is the same either way (every query meets every row once '
        'over the cluster); sharding divides the bank\'s memory by W and moves O(B_tot x D) '
        'floats per step instead of nothing (replicated banks all-gather the update batch '
        'too). Replicated fp32 banks stop fitting an 80 GB GPU beyond ~150M images.']
    with open(args.doc, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


def main():
    args = parse_args()
    rows = measure(args)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(rows, f, indent=1)
    write_doc(args, rows)


if __name__ == '__main__':
    main()
