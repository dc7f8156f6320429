from .knn_eval import build_knn_dataloaders, extract_features, knn_evaluate

__all__ = ['extract_features', 'knn_evaluate', 'build_knn_dataloaders']
