from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules import ExemplarLoss


@MODELS.register_module()
class ExemplarHead(BaseModule):
    """Label-filtered contrastive head of Exemplar.

    A thin registered wrapper of :class:`mm_instdisc.modules.ExemplarLoss`;
    see there for the maths and edge cases. `What Makes Instance
    Discrimination Good for Transfer Learning?
    <https://arxiv.org/abs/2006.06606>`_ (ICLR 2021).

    Args:
        temperature (float): t. Defaults to 0.2 (Exemplar-v2; 0.07 for
            Exemplar-v1).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, temperature: float = 0.2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = ExemplarLoss(temperature=temperature)

    @property
    def temperature(self) -> float:
        return self.loss_module.temperature

    def loss(self, q: Tensor, k: Tensor, queue_keys: Tensor,
             labels: Optional[Tensor] = None,
             queue_labels: Optional[Tensor] = None) -> Tensor:
        """The loss of queries (B, D) against their keys (B, D) and the
        queued keys (K, D) minus those of the query's class; see
        :meth:`ExemplarLoss.forward`."""
        return self.loss_module(q, k, queue_keys, labels, queue_labels)
