from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from mm_instdisc.modules import knn_evaluate


@METRICS.register_module()
class KNNMetric(BaseMetric):
    """Weighted kNN accuracy of embeddings against a reference set.

    The reference (features and labels of the training set) is handed over
    by :class:`KNNReferenceHook` (NPID's memory bank, or the training
    images' embeddings) or by :meth:`set_reference`; queries are the
    ``feat`` fields that the model's ``predict`` mode writes into the
    validation samples. Results are
    ``knn/top1_k{k}`` and ``knn/top5_k{k}`` for each k.

    Args:
        ks (Sequence[int]): Neighbourhood sizes. Defaults to (200, ).
        temperature (float): tau of the vote weights exp(s/tau). Defaults to
            0.07.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'knn'``.
    """

    default_prefix = 'knn'

    def __init__(self, ks: Sequence[int] = (200, ), temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ks = tuple(ks)
        self.temperature = temperature
        self.topk = tuple(topk)
        self._ref_feats: Optional[torch.Tensor] = None
        self._ref_labels: Optional[torch.Tensor] = None

    def set_reference(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Set reference features (N, D) and their labels (N, )."""
        if feats.shape[0] != labels.shape[0]:
            raise ValueError(f'{feats.shape[0]} reference features but '
                             f'{labels.shape[0]} labels.')
        self._ref_feats, self._ref_labels = feats, labels

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'feat' not in ds:
                raise KeyError("KNNMetric needs the model's predict mode to "
                               "store embeddings in the samples' 'feat' field.")
            self.results.append(
                dict(feat=ds['feat'].detach().cpu(),
                     label=torch.as_tensor(ds['gt_label']).view(-1)[0].cpu()))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if self._ref_feats is None:
            raise RuntimeError(
                'KNNMetric has no reference set: add '
                "dict(type='KNNReferenceHook') to custom_hooks or call "
                'set_reference(features, labels) before evaluation.')
        query = torch.stack([r['feat'] for r in results])
        labels = torch.stack([r['label'] for r in results])
        res = knn_evaluate(self._ref_feats, self._ref_labels, query, labels,
                           self.ks, self.temperature, self.topk)
        return {f'top{t}_k{k}': acc
                for k, accs in res.items() for t, acc in accs.items()}
