"""The experiments library of ``benchmarks/``: resumable training
runs through ``tools/train.py``, the small Fashion-MNIST run configs the
per-method benchmarks share, and Mask R-CNN fine-tuning on the composed
COCO set. The read-out (weighted kNN and a linear probe) is the package's
``mm_instdisc.modules.readout``.

The scripts import it as ``benchmarks.lib`` (their one ``sys.path`` edit is
``benchmarks/_path.py``; no script imports another); it needs a checkout (it
runs ``tools/`` and reads ``configs/``), as the scripts do.
"""
from .detection import (DET_CONFIG, DET_METRICS, ensure_fmnist_coco,
                        finetune_detector)
from .runs import (ROOT, finetune_classifier, fmnist_run_config, last_metrics,
                   parse_starts, setup_mmpretrain, train_run)

__all__ = [
    'DET_CONFIG', 'DET_METRICS', 'ROOT', 'ensure_fmnist_coco',
    'finetune_classifier', 'finetune_detector', 'fmnist_run_config',
    'last_metrics', 'parse_starts', 'setup_mmpretrain', 'train_run'
]
