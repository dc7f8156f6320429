from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules import NPIDLoss


@MODELS.register_module()
class NPIDHead(BaseModule):
    """Non-parametric softmax / NCE head of NPID.

    A thin registered wrapper of :class:`mm_instdisc.modules.NPIDLoss`; see
    there for the maths. `Unsupervised Feature Learning via Non-Parametric
    Instance Discrimination <https://arxiv.org/abs/1805.01978>`_.

    Args:
        loss_mode (str): ``'nce'`` or ``'softmax'``. Defaults to ``'nce'``.
        num_negatives (int): m, noise samples per positive. Defaults to 4096.
        temperature (float): tau. Defaults to 0.07.
        z_mode (str): ``'once'`` (paper) or ``'ema'``. Defaults to ``'once'``.
        z_momentum (float): EMA weight on the old Z. Defaults to 0.99.
        prox_weight (float): lambda of the proximal term. Defaults to 0.
        shared_negatives (bool): One noise set per batch. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, loss_mode: str = 'nce', num_negatives: int = 4096,
                 temperature: float = 0.07, z_mode: str = 'once',
                 z_momentum: float = 0.99, prox_weight: float = 0.0,
                 shared_negatives: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = NPIDLoss(
            mode=loss_mode, num_negatives=num_negatives,
            temperature=temperature, z_mode=z_mode, z_momentum=z_momentum,
            prox_weight=prox_weight, shared_negatives=shared_negatives)

    def loss(self, feats: Tensor, idx: Tensor, bank: Tensor) -> Tensor:
        """Loss of L2-normalised ``feats`` (B, D) at bank rows ``idx`` (B, )."""
        return self.loss_module(feats, idx, bank)
