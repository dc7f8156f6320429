"""Every config loads, and its model builds (and runs one step where CPU-sized)."""
import glob
import os

import pytest

from tests.helpers import ROOT

CONFIGS = sorted(
    p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_there_are_configs():
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[os.path.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    model_cfg = cfg.model
    if (model_cfg.get('bank_size') or 0) > 100000:
        model_cfg.bank_size = 1000  # a 1.28M-row bank is not needed here
    if scope == 'mmdet':  # detection transfer configs on mmdet:: bases
        from mmdet.registry import HOOKS, MODELS
    else:
        from mmpretrain.registry import HOOKS, MODELS
    model = MODELS.build(model_cfg)  # the model only: no data, no weights
    assert sum(p.numel() for p in model.parameters()) > 0
    for h in cfg.get('custom_hooks', []):
        HOOKS.build(h)
    assert cfg.train_dataloader.dataset.type
    if scope != 'mmdet':  # (CocoMetric reads its annotation file at init)
        # evaluators build: an override that forgets _delete_=True keeps the
        # base metric's arguments (e.g. KNNMetric's ks on Accuracy)
        from mmpretrain.registry import METRICS
        for key in ('val_evaluator', 'test_evaluator'):
            ev = cfg.get(key)
            for metric in (ev if isinstance(ev, (list, tuple)) else
                           [ev] if ev else []):
                METRICS.build(metric)
