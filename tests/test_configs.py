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


#: hooks every run needs, from configs/_base_/default_runtime.py's
#: default_hooks (a config's own custom_hooks cannot drop them)
MANDATORY_HOOKS = ('RandomStateHook', 'BNStatsSyncHook', 'CheckpointSafetyHook')


def runner_hook_types(cfg) -> list:
    """The types of the hooks mmengine's Runner registers for ``cfg``, in
    registration order: its own ``register_default_hooks`` (mmengine's six
    defaults merged with ``cfg.default_hooks`` by key, every extra key a
    hook) and ``register_custom_hooks``, on a stand-in that records the hook
    configs instead of building them (no model, no data)."""
    from mmengine.runner import Runner
    recorded = []

    class Recorder:
        def register_hook(self, hook, priority=None):
            recorded.append(hook)

    Runner.register_default_hooks(Recorder(), cfg.get('default_hooks'))
    Runner.register_custom_hooks(Recorder(), cfg.get('custom_hooks') or [])
    return [h['type'] for h in recorded]


def test_runner_hook_types_sees_default_hooks_extra_keys():
    from mmengine.config import Config
    cfg = Config(dict(default_hooks=dict(timer=None, extra=dict(type='X')),
                      custom_hooks=[dict(type='Y')]))
    types = runner_hook_types(cfg)
    assert 'IterTimerHook' not in types  # None removes a default
    assert types[-2:] == ['X', 'Y'] and 'CheckpointHook' in types


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[os.path.relpath(p, ROOT) for p in CONFIGS])
def test_config_has_mandatory_hooks(path):
    """Every pretraining / classification config runs the mandatory hooks
    exactly once, whatever its custom_hooks say (detection transfer configs
    run on mmdet's own runtime, without configs/_base_/default_runtime.py)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg.get('default_scope', 'mmpretrain') == 'mmdet':
        assert not any(h['type'] in MANDATORY_HOOKS
                       for h in cfg.get('custom_hooks') or [])
        return
    types = runner_hook_types(cfg)
    for hook in MANDATORY_HOOKS:
        assert types.count(hook) == 1, (hook, types)
    listed = [h['type'] for h in cfg.get('custom_hooks') or []]
    assert not set(listed) & set(MANDATORY_HOOKS), (
        f'{listed}: the mandatory hooks come from default_hooks; listing '
        'them in custom_hooks registers them twice')
    from mmpretrain.registry import HOOKS
    for key, hook in cfg.default_hooks.items():
        if hook is not None and hook['type'] in MANDATORY_HOOKS:
            HOOKS.build(hook)  # registered, and builds with its arguments
