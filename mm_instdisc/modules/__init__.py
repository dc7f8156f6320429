"""Plain-PyTorch maths of mm_instdisc (imports only torch)."""
from .adco import AdCoLoss, AdversarialNegatives
from .batch_augment import BatchAugment
from .exemplar import UNFILLED_LABEL, ExemplarLoss, ExemplarQueue
from .knn import knn_topk, knn_vote, topk_accuracy, weighted_knn
from .memory_bank import MemoryBank
from .npid_loss import NPIDLoss, sample_negatives
from .parametric_instance import ParametricInstanceLoss
from .splitmask import (SplitMaskGenerator, SplitMaskLoss, SplitMaskTokenizer, block_mask, splitmask_step)  # noqa: E501

__all__ = [
    'ExemplarLoss', 'ExemplarQueue', 'UNFILLED_LABEL',
    'MemoryBank', 'NPIDLoss', 'sample_negatives', 'knn_topk', 'knn_vote',
    'weighted_knn', 'topk_accuracy', 'AdversarialNegatives', 'AdCoLoss'
]
__all__ += ['SplitMaskGenerator', 'SplitMaskLoss', 'SplitMaskTokenizer', 'block_mask', 'splitmask_step']  # noqa: E501
__all__ += ['ParametricInstanceLoss']
__all__ += ['BatchAugment']
from .sharded_memory_bank import (ShardedMemoryBank, shard_bounds,  # noqa: E402
                                  sharded_knn_topk,
                                  sharded_row_logits,
                                  sharded_sampled_softmax_loss,
                                  sharded_softmax_loss)
__all__ += ['ShardedMemoryBank', 'shard_bounds', 'sharded_knn_topk',
            'sharded_row_logits', 'sharded_sampled_softmax_loss',
            'sharded_softmax_loss']
