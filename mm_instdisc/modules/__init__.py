"""Plain-PyTorch maths of mm_instdisc (imports only torch)."""
from .adco import AdCoLoss, AdversarialNegatives
from .knn import knn_topk, knn_vote, topk_accuracy, weighted_knn
from .memory_bank import MemoryBank
from .npid_loss import NPIDLoss, sample_negatives

__all__ = [
    'MemoryBank', 'NPIDLoss', 'sample_negatives', 'knn_topk', 'knn_vote',
    'weighted_knn', 'topk_accuracy', 'AdversarialNegatives', 'AdCoLoss'
]
