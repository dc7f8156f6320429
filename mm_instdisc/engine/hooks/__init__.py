from .adco_negatives_init_hook import AdCoNegativesInitHook
from .memory_bank_hook import MemoryBankHook
from .random_state_hook import RandomStateHook

__all__ = ['MemoryBankHook', 'RandomStateHook', 'AdCoNegativesInitHook']
