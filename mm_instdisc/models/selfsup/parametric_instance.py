from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from .embed_predict import EmbedPredictMixin
from .npid import sample_indices


@MODELS.register_module()
class ParametricInstance(EmbedPredictMixin, BaseSelfSupervisor):
    """Parametric instance classification: NPID's "parametric softmax".

    The baseline of `Unsupervised Feature Learning via Non-Parametric
    Instance Discrimination <https://arxiv.org/abs/1805.01978>`_ (eq. 1,
    Table 1): each training image is its own class with a learned weight
    vector, trained with the softmax cross-entropy over all N classes (see
    :class:`mm_instdisc.modules.ParametricInstanceLoss`). The embedding is
    NPID's (L2-normalised neck output), so the kNN read-out is comparable;
    the difference is that the N x D classifier is a parameter updated by
    the optimizer instead of NPID's memory bank of past features. The
    classifier (``head.loss_module.weight``) is saved in checkpoints; no
    hook is needed for training. For kNN validation use
    ``KNNReferenceHook`` (the reference set is the training images'
    embeddings, as for the other bankless models).

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config projecting to ``feat_dim``.
        head (dict): ``LossHead`` config whose loss is a
            ``ParametricInstanceLoss``; the loss's ``num_instances`` and
            ``feat_dim`` are set from this class's arguments.
        num_instances (int): N, the number of training images (the sample
            indices are the class labels).
        feat_dim (int): D, the embedding size. Defaults to 128.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 num_instances: int, feat_dim: int = 128,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        head = dict(head)
        if head.get('type') == 'LossHead':  # (a replaced head type raises)
            loss = head['loss'] = dict(head.get('loss') or {})
            for key, value in (('num_instances', num_instances),
                               ('feat_dim', feat_dim)):
                if loss.get(key, value) != value:
                    raise ValueError(
                        f'ParametricInstance: head.loss.{key}={loss[key]} '
                        f'differs from the model\'s {key}={value}; set it '
                        'on the model only.')
                loss[key] = value
        super().__init__(backbone=backbone, neck=neck, head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.num_instances = int(num_instances)
        self.feat_dim = int(feat_dim)

    def loss(self, inputs: List[Tensor],
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """Instance-classification loss of one view per image.

        Args:
            inputs (list[Tensor]): Views; only the first is used, (B, C, H, W).
            data_samples (list[DataSample]): Must carry ``sample_idx``.

        Returns:
            dict[str, Tensor]: ``loss`` plus ``inst_acc`` (percentage of the
            batch classified as its own instance, a progress indicator) for
            the log.
        """
        feats = self.embed(inputs)  # (B, D)
        idx = sample_indices(data_samples, feats.device)  # (B, )
        loss, logits = self.head.loss(feats, idx, return_logits=True)
        with torch.no_grad():
            inst_acc = (logits.argmax(1) == idx).float().mean() * 100
        return dict(loss=loss, inst_acc=inst_acc)
