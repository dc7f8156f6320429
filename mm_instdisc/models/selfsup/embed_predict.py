from typing import List, Optional, Union

from mmpretrain.structures import DataSample
from torch import Tensor


class EmbedPredictMixin:
    """Adds a ``'predict'`` mode to a ``BaseSelfSupervisor``.

    The subclass provides ``embed(inputs) -> Tensor (B, D)``; ``predict``
    stores each embedding in its sample's ``feat`` field, which is what
    :class:`KNNMetric` and mmengine's val/test loops consume.
    """

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
