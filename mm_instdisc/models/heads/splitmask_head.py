from typing import Dict, List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules.splitmask import GatherFn, SplitMaskLoss


@MODELS.register_module()
class SplitMaskHead(BaseModule):
    """Loss head of SplitMask: two-way token inpainting + InfoNCE.

    A thin registered wrapper of :class:`mm_instdisc.modules.SplitMaskLoss`
    (the token predictor, the optional projection and the maths live there).
    `SplitMask <https://arxiv.org/abs/2112.10740>`_.

    Args:
        embed_dims (int): Decoder width C.
        vocab_size (int): Tokeniser vocabulary V. Defaults to 8192.
        proj_dim (int, optional): Linear projection of the pooled
            descriptors before InfoNCE; None for none. Defaults to None.
        temperature (float): InfoNCE temperature. Defaults to 0.2.
        mim_weight (float): Weight of the token cross-entropy. Defaults to
            1.0.
        contrastive_weight (float): Weight of InfoNCE. Defaults to 1.0.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, embed_dims: int, vocab_size: int = 8192,
                 proj_dim: Optional[int] = None, temperature: float = 0.2,
                 mim_weight: float = 1.0, contrastive_weight: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.vocab_size = int(vocab_size)
        self.loss_module = SplitMaskLoss(
            embed_dims, vocab_size=vocab_size, proj_dim=proj_dim,
            temperature=temperature, mim_weight=mim_weight,
            contrastive_weight=contrastive_weight)

    def loss(self, dec_a: Optional[Tensor], dec_b: Optional[Tensor],
             ids_a: Tensor, ids_b: Tensor, tokens: Tensor,
             gather: Optional[GatherFn] = None) -> Dict[str, Tensor]:
        """Losses of the decoder outputs (B, L, C) of the branches that saw
        A and B; see :meth:`SplitMaskLoss.forward`."""
        return self.loss_module(dec_a, dec_b, ids_a, ids_b, tokens, gather)
