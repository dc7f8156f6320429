from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules import ParametricInstanceLoss


@MODELS.register_module()
class ParametricInstanceHead(BaseModule):
    """Parametric instance-classification head, NPID's baseline.

    A thin registered wrapper of
    :class:`mm_instdisc.modules.ParametricInstanceLoss`; see there for the
    maths. `Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination <https://arxiv.org/abs/1805.01978>`_ (eq. 1). The
    classifier weights are the parameter ``loss_module.weight`` of shape
    (N, D).

    Args:
        num_instances (int): N, one class per training image; must equal
            the training set size.
        feat_dim (int): D, the embedding size. Defaults to 128.
        temperature (float): T; the paper's eq. 1 has none (1.0).
            Defaults to 1.0.
        init_std (float): Std of the normal initialisation of the weights.
            Defaults to 0.01.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, num_instances: int, feat_dim: int = 128,
                 temperature: float = 1.0, init_std: float = 0.01,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = ParametricInstanceLoss(
            num_instances=num_instances, feat_dim=feat_dim,
            temperature=temperature, init_std=init_std)

    def logits(self, feats: Tensor) -> Tensor:
        """Class scores of ``feats`` (B, D). Tensor of shape (B, N)."""
        return self.loss_module.logits(feats)

    def loss(self, feats: Tensor, idx: Tensor, return_logits: bool = False):
        """Cross-entropy of ``feats`` (B, D) against their indices (B, )
        (and the (B, N) logits with ``return_logits=True``)."""
        return self.loss_module(feats, idx, return_logits=return_logits)
