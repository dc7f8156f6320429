"""Weighted kNN evaluation of a checkpoint (NPID protocol).

    python tools/knn_eval.py CONFIG CHECKPOINT [--ks 10 20 100 200] [--temperature 0.07]

Extracts features of the config's training set and test set with the test
pipeline (progress bar on stderr), then prints top-1/top-5 accuracy of the
weighted kNN classifier (cosine similarity, votes exp(s/tau)) for each k.
``--use-bank`` uses the checkpoint's memory bank (NPID) as reference instead
of freshly extracted training features.
"""
import argparse
import json
import time
from typing import Optional, Sequence

import torch
from mmengine.config import Config, DictAction

from mm_instdisc.evaluation import (build_knn_dataloaders, dataset_labels,
                                    extract_features, load_model)
from mm_instdisc.modules import knn_evaluate


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None); the help
    text is this module's docstring."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', help="checkpoint file, or 'none' for the "
                   'randomly initialised network')
    p.add_argument('--ks', type=int, nargs='+', default=[10, 20, 100, 200])
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--feature', default='embed', choices=['embed', 'backbone'])
    p.add_argument('--use-bank', action='store_true',
                   help="use the checkpoint's memory bank as the reference set")
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--out', help='write the accuracies to this JSON file')
    p.add_argument('--cfg-options', nargs='+', default=None,
                   action=DictAction)
    return p.parse_args(argv)


@torch.no_grad()
def main(argv: Optional[Sequence[str]] = None) -> None:
    """Print (and with ``--out`` write) the weighted kNN accuracies of the
    command line ``argv`` (``sys.argv[1:]`` when None); no gradients."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = load_model(cfg, args.checkpoint)
    train_loader, test_loader = build_knn_dataloaders(cfg, args.batch_size)
    t0 = time.time()
    if args.use_bank:
        if not hasattr(model, 'memory_bank'):
            raise SystemExit('--use-bank: this model has no memory bank')
        train_feats = model.memory_bank.bank.detach()
        train_labels = dataset_labels(train_loader.dataset)
    else:
        train_feats, train_labels = extract_features(
            model, train_loader, args.feature, desc='train features')
    test_feats, test_labels = extract_features(model, test_loader,
                                               args.feature,
                                               desc='test features')
    res = knn_evaluate(train_feats, train_labels, test_feats, test_labels,
                       args.ks, args.temperature)
    print(f'weighted kNN (tau={args.temperature}, {len(train_labels)} '
          f'reference, {len(test_labels)} test images, '
          f'{time.time() - t0:.0f}s):')
    print(f'{"k":>5} {"top-1":>8} {"top-5":>8}')
    for k, acc in res.items():
        print(f'{k:>5} {acc[1]:>8.2f} {acc[5]:>8.2f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({str(k): v for k, v in res.items()}, f, indent=2)


if __name__ == '__main__':
    main()
