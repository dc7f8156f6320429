from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mm_instdisc.modules import ExemplarQueue, gather_rows

from .embed_predict import EmbedPredictMixin, MomentumEncoderMixin


def class_labels(data_samples: Optional[List[DataSample]],
                 device: torch.device) -> Tensor:
    """Each sample's single class index (``gt_label``). Shape (B, ).

    Raises:
        ValueError: When a sample has no ``gt_label``, more than one label,
            or a negative one.
    """
    if not data_samples:
        raise ValueError('ExemplarMoCo needs data samples carrying a class '
                         'label (gt_label) per image, got none.')
    labels = []
    for i, ds in enumerate(data_samples):
        if 'gt_label' not in ds:
            raise ValueError(
                f'ExemplarMoCo needs a class label per image, but data '
                f"sample {i} has no 'gt_label' (fields: "
                f'{sorted(ds.all_keys())}). Exemplar is supervised '
                'pretraining: use a labelled dataset (mmpretrain datasets '
                'set gt_label, PackInputs packs it), or MoCo for unlabelled '
                'data.')
        y = ds.gt_label
        y = torch.as_tensor(y).flatten()
        if y.numel() != 1:
            raise ValueError(
                f'ExemplarMoCo expects exactly one class index per image, '
                f'data sample {i} has gt_label {y.tolist()} (multi-label '
                'data is not supported).')
        if y.dtype.is_floating_point or int(y) < 0:
            raise ValueError(
                f'ExemplarMoCo expects class indices >= 0, data sample {i} '
                f'has gt_label {y.tolist()} (dtype {y.dtype}); -1 usually '
                'marks an unlabelled image.')
        labels.append(int(y))
    return torch.tensor(labels, dtype=torch.long, device=device)


@MODELS.register_module()
class ExemplarMoCo(MomentumEncoderMixin, EmbedPredictMixin,
                   BaseSelfSupervisor):
    """Exemplar: MoCo whose negatives exclude the query's own class.

    `What Makes Instance Discrimination Good for Transfer Learning?
    <https://arxiv.org/abs/2006.06606>`_ (Zhao et al., ICLR 2021). Part of
    the design follows mmpretrain's ``MoCo`` and `facebookresearch/moco
    <https://github.com/facebookresearch/moco>`_.

    A MoCo encoder pair (query encoder = backbone + neck; key encoder = its
    exponential moving average, keys batch-shuffled across ranks for BN),
    a FIFO queue of keys and, in parallel, of the keys' class labels
    (:class:`mm_instdisc.modules.ExemplarQueue`), and the head's ``ExemplarLoss``: the
    positive of a query is the key of its other view; the negatives are the
    queued keys of *other* classes. Two flavours, by config:

    * Exemplar-v1 (on MoCo v1): ``LinearNeck`` to 128-d, t = 0.07.
    * Exemplar-v2 (on MoCo v2): ``MoCoV2Neck`` (2-layer MLP), t = 0.2,
      MoCo-v2 augmentation.

    Labels come from ``data_samples[i].gt_label``; unlabelled data raises a
    ``ValueError``. After the loss, every rank all-gathers the keys *and*
    their labels and enqueues them in the same order, so the queues stay
    identical across ranks. The queue (``queue.keys``, ``queue.labels``,
    ``queue.ptr``) is made of persistent buffers and the key encoder is a
    submodule, so a checkpoint holds all of the state and resuming is exact
    (with ``RandomStateHook`` for the random generators). Unfilled queue
    slots hold MoCo's random unit keys with label -1 and serve as negatives
    for every query.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config projecting to ``feat_dim``.
        head (dict): ``LossHead`` config whose loss is an ``ExemplarLoss``
            (temperature).
        queue_len (int): K, the number of queued keys. Defaults to 65536.
        feat_dim (int): D, the embedding size. Defaults to 128.
        momentum (float): Weight of the *new* parameters in the key
            encoder's moving average (mmpretrain's convention; 0.001 is
            MoCo's m = 0.999). Defaults to 0.001.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 queue_len: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.001, pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        self.check_momentum(momentum)
        super().__init__(backbone=backbone, neck=neck, head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.build_key_encoder(momentum)
        self.queue = ExemplarQueue(queue_len, feat_dim)

    @torch.no_grad()
    def enqueue(self, k: Tensor, labels: Tensor) -> None:
        """All-gather keys (B, D) and labels (B, ) and enqueue them."""
        k_all, _ = gather_rows(k)  # (M, D)
        y_all, _ = gather_rows(labels)  # (M, )
        self.queue.enqueue(k_all, y_all)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """The Exemplar loss of a batch of two views.

        Args:
            inputs (list[Tensor]): Two views, each of shape (B, C, H, W);
                view 0 for the query, view 1 for the key.
            data_samples (list[DataSample]): Must carry ``gt_label``.

        Returns:
            dict[str, Tensor]: ``loss``, plus for the log ``neg_excluded``,
            the mean fraction of queued negatives dropped as same-class.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            got = (f'{len(inputs)} views' if isinstance(inputs, (list, tuple))
                   else f'a {type(inputs).__name__}')
            raise ValueError("ExemplarMoCo expects 2 views (the 'MultiView' "
                             f'transform with num_views=2), got {got}.')
        y = class_labels(data_samples, inputs[0].device)  # (B, )
        q = self.embed(inputs[0])  # (B, D)
        with torch.no_grad():
            self.encoder_k.update_parameters(
                self.query_encoder)
            k = self.keys(inputs[1])  # (B, D)
        # cloned: the enqueue below writes the buffers in place before the
        # backward reads them
        queue_keys = self.queue.keys.clone()  # (K, D)
        queue_labels = self.queue.labels.clone()  # (K, )
        loss = self.head.loss(q, k, queue_keys, y, queue_labels)
        with torch.no_grad():
            excluded = (y[:, None] == queue_labels[None, :]).float().mean()
        self.enqueue(k, y)
        return dict(loss=loss, neg_excluded=excluded)
