from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.structures import DataSample
from torch import Tensor, nn


class EmbedPredictMixin:
    """Adds ``embed`` and a ``'predict'`` mode to a ``BaseSelfSupervisor``.

    ``embed(inputs) -> Tensor (B, D)`` is the L2-normalised output of
    backbone + neck (the one definition shared by NPID, the parametric
    baseline, AdCo and ExemplarMoCo; SplitMask overrides it); ``predict``
    stores each embedding in its sample's ``feat`` field, which is what
    :class:`KNNMetric` and mmengine's val/test loops consume.
    """

    def embed(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        """L2-normalised embeddings of a batch (the first view of a list).
        Tensor of shape (B, D)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        return F.normalize(self.neck(self.backbone(inputs))[0], dim=1)

    def predict(self, inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Embeddings of a batch, stored in each sample's ``feat`` field."""
        feats = self.embed(inputs)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(feats.shape[0])]
        for ds, f in zip(data_samples, feats):
            ds.set_field(f, 'feat', field_type='data')
        return data_samples

    def forward(self, inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """Modes ``'tensor'`` (backbone features), ``'loss'``, ``'predict'``."""
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)


class MomentumEncoderMixin:
    """Query encoder = backbone + neck; key encoder = its moving average.

    Shared by the MoCo-style algorithms (``AdCo``, ``ExemplarMoCo``). The
    subclass calls :meth:`build_key_encoder` in ``__init__`` after
    ``BaseSelfSupervisor.__init__`` and updates it each step with
    ``self.encoder_k.update_parameters(self.query_encoder)``.
    """

    @property
    def query_encoder(self) -> nn.Sequential:
        return nn.Sequential(self.backbone, self.neck)

    @staticmethod
    def check_momentum(momentum: float) -> None:
        if not 0.0 < momentum < 1.0:
            raise ValueError(f'Illegal momentum: {momentum}; expected (0, 1), '
                             'the weight of the new parameters (0.001 = '
                             'official m 0.999).')

    def build_key_encoder(self, momentum: float) -> None:
        """``encoder_k``: EMA of the query encoder; ``momentum`` is the
        weight of the *new* parameters (mmpretrain's convention)."""
        self.check_momentum(momentum)
        self.momentum = float(momentum)
        self.encoder_k = ExponentialMovingAverage(self.query_encoder,
                                                  self.momentum)

    @torch.no_grad()
    def keys(self, inputs: Tensor) -> Tensor:
        """L2-normalised keys of the local batch (shuffle-BN). Shape (B, D)."""
        x, idx_unshuffle = batch_shuffle_ddp(inputs)
        k = F.normalize(self.encoder_k(x)[0], dim=1)
        return batch_unshuffle_ddp(k, idx_unshuffle)

    @torch.no_grad()
    def reset_key_encoder(self) -> None:
        """Copy the query encoder's parameters and buffers into the key
        encoder."""
        src, dst = self.query_encoder, self.encoder_k.module
        for p_k, p_q in zip(dst.parameters(), src.parameters()):
            p_k.copy_(p_q)
        for b_k, b_q in zip(dst.buffers(), src.buffers()):
            b_k.copy_(b_q)
