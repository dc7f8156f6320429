from .knn_eval import (build_knn_dataloaders, extract_features, knn_evaluate,
                       load_model, pixel_features)

__all__ = [
    'extract_features', 'knn_evaluate', 'build_knn_dataloaders',
    'pixel_features', 'load_model'
]
from .selfsup_to_backbone import (backbone_family, convert_selfsup_checkpoint,  # noqa: F401
                                  list_prefixes, selfsup_to_backbone)
from .linear_probe import linear_probe  # noqa: F401
