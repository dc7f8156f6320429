from .knn_eval import (build_knn_dataloaders, extract_features, knn_evaluate,
                       load_model, pixel_features)

__all__ = [
    'extract_features', 'knn_evaluate', 'build_knn_dataloaders',
    'pixel_features', 'load_model'
]
from .selfsup_to_backbone import convert_selfsup_checkpoint, selfsup_to_backbone  # noqa: F401,E501
from .linear_probe import linear_probe  # noqa: F401
