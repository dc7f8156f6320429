from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules import NPIDLoss


@MODELS.register_module()
class NPIDHead(BaseModule):
    """Non-parametric softmax / NCE / sampled-softmax head of NPID.

    A thin registered wrapper of :class:`mm_instdisc.modules.NPIDLoss`; see
    there for the maths and every argument. `Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination <https://arxiv.org/abs/1805.01978>`_.

    Args:
        loss_mode (str): ``'softmax'``, ``'nce'`` or ``'sampled_softmax'``.
            Defaults to ``'nce'``.
        init_cfg (dict or list[dict], optional): Initialization config.
        **loss_kwargs: ``NPIDLoss`` arguments (``num_negatives``,
            ``temperature``, ``z_mode``, ``z_momentum``, ``z_warmup``,
            ``prox_weight``, ``shared_negatives``, ``chunk_size``,
            ``dense_logits_limit``, ``check_interval``).
    """

    def __init__(self, loss_mode: str = 'nce',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **loss_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = NPIDLoss(mode=loss_mode, **loss_kwargs)

    def loss(self, feats: Tensor, idx: Tensor, bank: Tensor) -> Tensor:
        """Loss of L2-normalised ``feats`` (B, D) at bank rows ``idx`` (B, )."""
        return self.loss_module(feats, idx, bank)
