from .adco_negatives_init_hook import AdCoNegativesInitHook
from .bn_stats_sync_hook import BNStatsSyncHook, average_bn_stats
from .checkpoint_safety_hook import CheckpointSafetyHook
from .knn_reference_hook import KNNReferenceHook
from .memory_bank_hook import MemoryBankHook
from .random_state_hook import RandomStateHook

__all__ = [
    'MemoryBankHook', 'RandomStateHook', 'AdCoNegativesInitHook',
    'KNNReferenceHook', 'CheckpointSafetyHook', 'BNStatsSyncHook',
    'average_bn_stats'
]
from .splitmask_tokenizer_hook import \
    SplitMaskTokenizerHook  # noqa: E402,F401,E501

__all__ += ['SplitMaskTokenizerHook']
from .label_free_monitor_hook import \
    LabelFreeMonitorHook  # noqa: E402,F401,E501

__all__ += ['LabelFreeMonitorHook']
