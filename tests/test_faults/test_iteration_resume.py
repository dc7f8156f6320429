"""Fault injection: a run stopped at a seeded random iteration and resumed
from its iteration checkpoint (IterBasedTrainLoop) ends bit-identical to the
uninterrupted run, for every algorithm."""
import copy
import random

import pytest
import torch

from tests.helpers import (tiny_adco_cfg, tiny_exemplar_cfg, tiny_npid_cfg,
                           tiny_splitmask_cfg, write_fashion_mnist)

MAX_ITERS = 10


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


class Crash(Exception):
    """Stands for a process killed right after a checkpoint was written."""


def iteration_based(cfg, crash_after=None, record=None):
    """Iteration loop (MAX_ITERS, crossing epochs of 4 iterations), a
    checkpoint every iteration, no validation; optionally a crash right
    after iteration ``crash_after`` was checkpointed."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS,
                         val_interval=10 ** 6)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=MAX_ITERS,
                                by_epoch=False, begin=0, end=MAX_ITERS)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        by_epoch=False, max_keep_ckpts=3)
    runner = Runner.from_cfg(cfg)

    class _Hook(Hook):
        priority = 'LOWEST'  # after CheckpointHook has written

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if record is not None:
                record.append((runner.iter, float(outputs['loss'])))
            if crash_after is not None and runner.iter + 1 == crash_after:
                raise Crash(crash_after)

    runner.register_hook(_Hook())
    if crash_after is None:
        runner.train()
    else:
        with pytest.raises(Crash):
            runner.train()
    return runner


def resume(cfg, record):
    cfg = copy.deepcopy(cfg)
    cfg.resume, cfg.load_from = True, None  # auto: last_checkpoint
    return iteration_based(cfg, record=record)


def tiny_cfgs(data_root, work_dir):
    return {
        'npid': tiny_npid_cfg(data_root, work_dir, epochs=1, init='forward'),
        'adco': tiny_adco_cfg(data_root, work_dir, epochs=1),
        'exemplar': tiny_exemplar_cfg(data_root, work_dir, epochs=1),
        'splitmask': tiny_splitmask_cfg(data_root, work_dir),
    }


@pytest.mark.parametrize('algo', ['npid', 'adco', 'exemplar', 'splitmask'])
def test_kill_at_random_iteration_and_resume_is_exact(data_root, tmp_path,
                                                      algo):
    stop = random.Random(f'faults-{algo}').randint(2, MAX_ITERS - 2)
    full_rec, resumed_rec = [], []
    full = iteration_based(tiny_cfgs(data_root, tmp_path / 'full')[algo],
                           record=full_rec)
    cfg = tiny_cfgs(data_root, tmp_path / 'killed')[algo]
    iteration_based(cfg, crash_after=stop)
    resumed = resume(cfg, resumed_rec)
    assert resumed_rec == full_rec[stop:], f'stopped after iteration {stop}'
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), (k, stop)
    oa = full.optim_wrapper.state_dict()['state']
    ob = resumed.optim_wrapper.state_dict()['state']
    for i in oa:
        for key in oa[i]:
            assert torch.equal(oa[i][key], ob[i][key]), (i, key)
