"""Evaluation: feature extraction, loading a checkpoint for evaluation,
weighted kNN, the linear probe, and the registered :class:`KNNMetric`."""
from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

from .features import (build_knn_dataloaders, dataset_labels,  # noqa: E402
                       extract_features, iter_features, load_model,
                       model_features, pixel_features)
from .knn import knn_evaluate  # noqa: E402
from .linear_probe import linear_probe  # noqa: E402
from .metrics import KNNMetric  # noqa: E402

__all__ = [
    'KNNMetric', 'build_knn_dataloaders', 'dataset_labels',
    'extract_features', 'iter_features', 'knn_evaluate', 'linear_probe',
    'load_model', 'model_features', 'pixel_features'
]
