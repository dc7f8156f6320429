"""kNN read-out from a trained NPID memory bank stored in float32, bfloat16
and float16 (what ``ShardedMemoryBank(dtype=...)`` stores), and the bank's
memory in each.

    python benchmarks/bank_precision.py CONFIG CHECKPOINT [--doc PATH]

The test images' NPID embeddings (float32) vote among the bank's rows
(weighted kNN, tau 0.07, k = 20 and 200), the bank cast to each storage
dtype and read back in float32, as the sharded kNN and losses read it.
Appends (or replaces) a section in benchmarks/reports/scaling.md.
"""
import argparse
import os.path as osp
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

from benchmarks.lib import ROOT, setup_mmpretrain

MARK = '## Half-precision bank: kNN on a trained checkpoint'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--doc', default=osp.join(ROOT,
                                             'benchmarks/reports/scaling.md'))
    args = p.parse_args()
    import torch
    from mmengine.config import Config
    torch.set_num_threads(args.threads)
    setup_mmpretrain()
    from mm_instdisc.evaluation import (build_knn_dataloaders,
                                        extract_features, load_model)
    from mm_instdisc.modules import readout
    cfg = Config.fromfile(args.config)
    model = load_model(cfg, args.checkpoint)
    bank = model.memory_bank.bank.detach().float()
    train_loader, test_loader = build_knn_dataloaders(cfg, 512)
    labels = torch.as_tensor(train_loader.dataset.get_gt_labels()).long()
    if labels.numel() != bank.shape[0]:
        raise ValueError(f'{labels.numel()} training labels for a bank of '
                         f'{bank.shape[0]} rows.')
    q, q_labels = extract_features(model, test_loader, 'embed', desc='test')
    rows = []
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        stored = bank.to(dtype)
        t = time.perf_counter()
        acc = readout(stored.float(), labels, q, q_labels, probe=False)
        rows.append((str(dtype).replace('torch.', ''),
                     stored.numel() * stored.element_size() / 2**20,
                     acc['knn_k20'], acc['knn_k200'], time.perf_counter() - t))
        print(rows[-1], flush=True)
    base = rows[0]
    lines = [MARK, '',
             f'`python benchmarks/bank_precision.py {osp.relpath(args.config, ROOT)} '
             f'{args.checkpoint}`: the memory bank of a trained checkpoint '
             f'({bank.shape[0]} x {bank.shape[1]}), stored in each dtype and read '
             'back in float32; weighted kNN (tau 0.07) of the 10,000 test images\' '
             'NPID embeddings against it.', '',
             '| storage | bank memory | vs float32 | kNN k=20 | kNN k=200 | '
             'k=200 minus float32 |', '|---|---|---|---|---|---|']
    for name, mib, a20, a200, _ in rows:
        lines.append(f'| {name} | {mib:.1f} MiB | {mib / base[1]:.2f}x | '
                     f'{a20:.2f} | {a200:.2f} | {a200 - base[3]:+.2f} |')
    text = open(args.doc).read() if osp.exists(args.doc) else ''
    if MARK in text:
        text = text[:text.index(MARK)].rstrip() + '\n'
    with open(args.doc, 'w') as f:
        f.write(text.rstrip() + '\n\n' + '\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
