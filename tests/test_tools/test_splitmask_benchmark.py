"""The SplitMask benchmark's pretraining configs (SplitMask, BEiT-style,
MAE) build and take a training step on a tiny batch."""
import argparse
import importlib
import sys

import pytest
import torch

from tests.helpers import ROOT


@pytest.fixture(scope='module')
def bench():
    sys.path.insert(0, f'{ROOT}/benchmarks')
    try:
        yield importlib.import_module('splitmask_benchmark')
    finally:
        sys.path.remove(f'{ROOT}/benchmarks')


@pytest.mark.parametrize('method', ['splitmask', 'beit', 'mae'])
def test_pretraining_config_takes_a_step(bench, tmp_path, method):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    args = argparse.Namespace(
        width=32, depth=1, heads=2, batch_size=4, train_size=8, epochs=1,
        seed=0, threads=1)
    cfg = bench.pretrain_cfg(method, args, str(tmp_path), str(tmp_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    # a batch of 4 grey 32 px images, as PackInputs + the collate give it
    data = dict(inputs=torch.randint(0, 255, (4, 1, 32, 32),
                                     dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(4)])
    losses = model.loss(**model.data_preprocessor(data, training=True))
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
