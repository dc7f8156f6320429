"""Weighted kNN evaluation (NPID protocol: cosine similarity, votes
exp(s / tau)); the one evaluation behind :class:`KNNMetric`,
``tools/knn_eval.py`` and the benchmarks."""
from typing import Dict, Sequence

from torch import Tensor

from mm_instdisc.modules import topk_accuracy, weighted_knn


def knn_evaluate(train_feats: Tensor, train_labels: Tensor,
                 test_feats: Tensor, test_labels: Tensor,
                 ks: Sequence[int] = (10, 20, 100, 200),
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5)) -> Dict[int, Dict[int, float]]:
    """Top-k accuracies (%) of weighted kNN for each neighbourhood size:
    ``{k: {t: accuracy}}`` for k in ``ks`` and t in ``topk``."""
    scores = weighted_knn(test_feats, train_feats.to(test_feats.device),
                          train_labels, ks=ks, temperature=temperature)
    return {k: topk_accuracy(s, test_labels, tuple(topk))
            for k, s in scores.items()}
