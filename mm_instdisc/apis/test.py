"""Evaluate a checkpoint with a config's test loop, like mmpretrain's
tools/test.py (``mm-instdisc-test``, ``python tools/test.py``).

    mm-instdisc-test CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.json]
"""
import argparse
import json
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config

from mm_instdisc.apis.common import (add_common_args, build_runner,
                                     default_work_dir, finish_args,
                                     set_default_dataloader_cfg)
from mm_instdisc.utils import shutdown_distributed


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    add_common_args(parser)
    args = parser.parse_args(argv)
    finish_args(args)
    return args


def add_knn_reference(cfg: Config) -> None:
    """A kNN test needs a reference set: add a KNNReferenceHook if the
    config has none (NPID's memory bank, or the training images' features
    for models without a bank)."""
    evaluator = cfg.get('test_evaluator') or {}
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator]
    if not any(e.get('type') == 'KNNMetric' for e in evaluators):
        return
    hooks = cfg.get('custom_hooks') or []
    if any(h.get('type') == 'KNNReferenceHook' for h in hooks):
        return
    cfg.custom_hooks = list(hooks) + [dict(type='KNNReferenceHook')]
    print('tools/test.py: KNNMetric without a reference hook; added '
          "dict(type='KNNReferenceHook') (reference = the memory bank, or "
          'the training images)')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Test the checkpoint as the command line ``argv`` says
    (``sys.argv[1:]`` when None); ``--out`` gets the metrics as JSON."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    default_work_dir(cfg, args)
    cfg.load_from = args.checkpoint
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_default_dataloader_cfg(cfg, field)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    add_knn_reference(cfg)
    metrics = build_runner(cfg).test()
    shutdown_distributed()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
        print(f'metrics written to {osp.abspath(args.out)}')


if __name__ == '__main__':
    main()
