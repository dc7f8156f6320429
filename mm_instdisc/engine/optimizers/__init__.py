from .adversarial_optim_wrapper import (AdversarialAmpOptimWrapper,
                                        AdversarialOptimWrapper)

__all__ = ['AdversarialOptimWrapper', 'AdversarialAmpOptimWrapper']
