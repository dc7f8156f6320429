from typing import List, Optional, Tuple, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules import AdCoLoss


@MODELS.register_module()
class AdCoHead(BaseModule):
    """Adversarial contrastive head of AdCo.

    A thin registered wrapper of :class:`mm_instdisc.modules.AdCoLoss`; see
    there for the maths. `AdCo: Adversarial Contrast for Efficient Learning
    of Unsupervised Representations from Self-Trained Negative Adversaries
    <https://arxiv.org/abs/2011.08435>`_.

    Args:
        temperature (float): t of the encoder loss. Defaults to 0.12.
        mem_temperature (float): mem_t of the negatives' (ascent) loss.
            Defaults to 0.02.
        batch_negatives (bool): Use the other keys of the global batch as
            negatives too, as the official code does. Defaults to True.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, temperature: float = 0.12,
                 mem_temperature: float = 0.02,
                 batch_negatives: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = AdCoLoss(temperature=temperature,
                                    mem_temperature=mem_temperature,
                                    batch_negatives=batch_negatives)

    def loss(self, q: Tensor, k: Tensor, negatives: Tensor,
             pos_offset: int = 0,
             batch_negatives: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
        """``(encoder_loss, negatives_loss)`` of queries (B, D), keys (M, D)
        and normalised negatives (D, K); see :meth:`AdCoLoss.forward`."""
        return self.loss_module(q, k, negatives, pos_offset, batch_negatives)

    def symmetric_loss(self, q1: Tensor, q2: Tensor, k1: Tensor, k2: Tensor,
                       negatives: Tensor,
                       pos_offset: int = 0) -> Tuple[Tensor, Tensor]:
        """Symmetrised losses; see :meth:`AdCoLoss.symmetric`."""
        return self.loss_module.symmetric(q1, q2, k1, k2, negatives,
                                          pos_offset)
