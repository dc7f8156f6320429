from .adco_negatives_init_hook import AdCoNegativesInitHook
from .knn_reference_hook import KNNReferenceHook
from .memory_bank_hook import MemoryBankHook
from .random_state_hook import RandomStateHook

__all__ = [
    'MemoryBankHook', 'RandomStateHook', 'AdCoNegativesInitHook',
    'KNNReferenceHook'
]
from .splitmask_tokenizer_hook import SplitMaskTokenizerHook  # noqa: E402,F401,E501
__all__ += ['SplitMaskTokenizerHook']
