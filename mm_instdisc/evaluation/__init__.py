"""Evaluation: feature extraction, loading a checkpoint for evaluation,
and the registered :class:`KNNMetric`; the read-out maths (weighted kNN, the
linear probe, ``readout``) is torch-only in :mod:`mm_instdisc.modules`."""
from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

from .features import (build_knn_dataloaders, dataset_labels,  # noqa: E402
                       extract_features, iter_features, load_model,
                       model_features, pixel_features)
from .metrics import KNNMetric  # noqa: E402

__all__ = [
    'KNNMetric', 'build_knn_dataloaders', 'dataset_labels',
    'extract_features', 'iter_features', 'load_model', 'model_features',
    'pixel_features'
]
