"""The experiments library under ``tools/benchmarks/``: resumable training
runs through ``tools/train.py``, the benchmarks' read-out (weighted kNN and
a linear probe), the small Fashion-MNIST run configs the per-method
benchmarks share, and Mask R-CNN fine-tuning on the composed COCO set.

The scripts import it normally (no ``sys.path`` edits, no script importing
another); it needs a checkout (it runs ``tools/`` and reads ``configs/``),
as the scripts do.
"""
from .detection import (DET_CONFIG, DET_METRICS, ensure_fmnist_coco,
                        finetune_detector)
from .runs import (ROOT, finetune_classifier, fmnist_run_config, knn_and_probe,
                   last_metrics, parse_starts, setup_mmpretrain, train_run)

__all__ = [
    'DET_CONFIG', 'DET_METRICS', 'ROOT', 'ensure_fmnist_coco',
    'finetune_classifier', 'finetune_detector', 'fmnist_run_config', 'knn_and_probe',
    'last_metrics', 'parse_starts', 'setup_mmpretrain', 'train_run'
]
