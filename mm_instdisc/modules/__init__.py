"""Plain-PyTorch maths of mm_instdisc (imports only torch)."""
from .adco import AdCoLoss, AdversarialNegatives
from .batch_augment import BatchAugment
from .colorization import BinnedPixelLoss, ab_bins, srgb_to_lab
from .distributed import GatherFn, gather_rows
from .exemplar import UNFILLED_LABEL, ExemplarLoss, ExemplarQueue
from .feature_readout import linear_probe, readout
from .info_nce import info_nce, info_nce_from_logits
from .knn import knn_evaluate, knn_topk, knn_vote, topk_accuracy, weighted_knn
from .label_free import alignment, loo_knn_accuracy, rankme, uniformity
from .memory_bank import MemoryBank
from .npid_loss import NPIDLoss, sample_negatives
from .parametric_instance import ParametricInstanceLoss
from .pretext import (PretextClsLoss, grid_patches, hamming_permutations,
                      jigsaw_tiles, neighbour_pairs, rotations)
from .sharded_memory_bank import (ShardedMemoryBank, all_gather_cat,
                                  shard_bounds, sharded_knn_topk,
                                  sharded_row_logits,
                                  sharded_sampled_softmax_loss,
                                  sharded_softmax_loss)
from .splitmask import (SplitMaskGenerator, SplitMaskLoss, SplitMaskTokenizer,
                        block_mask, block_masks, splitmask_step)

__all__ = [
    'AdCoLoss', 'AdversarialNegatives', 'BatchAugment', 'ExemplarLoss',
    'ExemplarQueue', 'MemoryBank', 'NPIDLoss', 'ParametricInstanceLoss',
    'ShardedMemoryBank', 'SplitMaskGenerator', 'SplitMaskLoss',
    'SplitMaskTokenizer', 'UNFILLED_LABEL', 'all_gather_cat', 'block_mask',
    'block_masks', 'knn_topk', 'knn_vote', 'sample_negatives', 'shard_bounds',
    'sharded_knn_topk', 'sharded_row_logits', 'sharded_sampled_softmax_loss',
    'sharded_softmax_loss', 'splitmask_step', 'topk_accuracy', 'weighted_knn',
    'GatherFn', 'gather_rows', 'info_nce', 'info_nce_from_logits',
    'PretextClsLoss', 'grid_patches', 'hamming_permutations', 'jigsaw_tiles',
    'neighbour_pairs', 'rotations', 'BinnedPixelLoss', 'ab_bins',
    'srgb_to_lab', 'alignment', 'uniformity', 'rankme', 'loo_knn_accuracy',
    'knn_evaluate', 'linear_probe', 'readout'
]
