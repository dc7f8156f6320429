"""KNNReferenceHook: the one place that hands KNNMetric its reference set,
the memory bank for a model that has one, extracted features otherwise."""
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import build_tiny_npid


class _Labelled:
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def get_gt_labels(self):
        return self.labels


def _runner(model, labels):
    from mm_instdisc.evaluation import KNNMetric
    metric = KNNMetric(ks=(5, ))
    return SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(
            dataset=_Labelled(labels)),
        val_evaluator=SimpleNamespace(metrics=[metric]),
        cfg=SimpleNamespace(val_dataloader=None)), metric


@pytest.mark.parametrize('max_samples', [None, 10])
def test_bank_is_the_reference_of_a_model_with_one(max_samples):
    from mm_instdisc.engine.hooks import KNNReferenceHook
    model = build_tiny_npid(bank_size=32)
    labels = torch.arange(32) % 10
    runner, metric = _runner(model, labels)
    KNNReferenceHook(max_samples=max_samples).before_val_epoch(runner)
    n = max_samples or 32
    assert torch.equal(metric._ref_feats, model.memory_bank.bank[:n])
    assert torch.equal(metric._ref_labels, labels[:n])


def test_bank_and_label_count_must_agree():
    from mm_instdisc.engine.hooks import KNNReferenceHook
    runner, _ = _runner(build_tiny_npid(bank_size=32), torch.arange(31) % 10)
    with pytest.raises(ValueError, match='31 training labels for a bank of '
                       '32 rows'):
        KNNReferenceHook().before_val_epoch(runner)


def test_metric_without_reference_names_the_hook():
    from mm_instdisc.evaluation import KNNMetric
    metric = KNNMetric(ks=(5, ))
    with pytest.raises(RuntimeError, match='KNNReferenceHook'):
        metric.compute_metrics([dict(feat=torch.ones(4),
                                     label=torch.tensor(0))])
