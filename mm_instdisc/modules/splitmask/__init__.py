"""SplitMask maths in plain PyTorch: masking (``masking.py``), the tokeniser
(``tokenizer.py``), the losses and one step (``loss.py``).

`Are Large-scale Datasets Necessary for Self-Supervised Pre-training?
<https://arxiv.org/abs/2112.10740>`_ (El-Nouby et al., 2021).

The patches of an image are split into two disjoint sets A and B that
together cover the image. One encoder sees only A, the same encoder sees
only B; a small decoder inpaints each branch to all positions. Each branch
predicts the discrete tokens of the *other* set (masked-image-modelling
cross-entropy), and the average-pooled decoder outputs of the two branches
of an image are matched by InfoNCE against the other images of the batch.

Everything here imports only torch; the OpenMMLab wrappers live in
``mm_instdisc.models`` (``SplitMask``, ``SplitMaskViT``,
``SplitMaskDecoder``, ``LossHead`` with ``SplitMaskLoss``).
"""
from .loss import (GatherFn, SplitMaskLoss, gather_tokens, info_nce,
                   mim_cross_entropy, splitmask_step)
from .masking import MASK_MODES, SplitMaskGenerator, block_mask, block_masks
from .tokenizer import (TOKENIZER_MODES, SplitMaskTokenizer, collect_patches,
                        patchify)

__all__ = [
    'GatherFn', 'MASK_MODES', 'SplitMaskGenerator', 'SplitMaskLoss',
    'SplitMaskTokenizer', 'TOKENIZER_MODES', 'block_mask', 'block_masks',
    'collect_patches',
    'gather_tokens', 'info_nce', 'mim_cross_entropy', 'patchify',
    'splitmask_step'
]
