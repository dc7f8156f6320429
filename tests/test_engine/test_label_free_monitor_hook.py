"""LabelFreeMonitorHook through mmengine's Runner: scalars in the message
hub, the PNG and JSON, the evaluated iterations, training untouched (same
losses, same augmentation stream) and a resume that keeps the record."""
import copy
import json
import os
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import (ROOT, LossRecorder, tiny_fmnist_runtime,
                           tiny_npid_cfg, write_fashion_mnist)

HOOK = 'LabelFreeMonitorHook'
ITERS = 8  # 64 images, batch 16, 2 epochs
INTERVAL = 3  # evaluations at 0, 3, 6 and the last iteration, 8


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def run(cfg, recorder=None):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    if recorder is not None:
        runner.register_hook(recorder.hook)
    runner.train()
    return runner


def monitor(runner):
    return [h for h in runner.hooks if type(h).__name__ == HOOK][0]


def npid_cfg(data_root, work_dir, epochs=2, hook=True):
    cfg = tiny_npid_cfg(data_root, work_dir, epochs=epochs)
    # 16 labelled test images for the hook's kNN; no validation loop
    val_dataset = copy.deepcopy(cfg.val_dataloader.dataset)
    val_dataset.indices = 16
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    if hook:
        cfg.custom_hooks.append(dict(
            type=HOOK, interval=INTERVAL, num_samples=24, batch_size=24,
            loss_interval=1, knn_k=5, val_dataset=val_dataset))
    return cfg


@pytest.fixture(scope='module')
def npid_runs(data_root, tmp_path_factory):
    """The same tiny NPID training with and without the hook."""
    tmp = tmp_path_factory.mktemp('npid')
    with_rec, without_rec = LossRecorder(), LossRecorder()
    with_hook = run(npid_cfg(data_root, tmp / 'with'), with_rec)
    run(npid_cfg(data_root, tmp / 'without', hook=False), without_rec)
    return SimpleNamespace(runner=with_hook, work_dir=tmp / 'with',
                           losses=with_rec.losses,
                           baseline=without_rec.losses)


def test_scalars_files_and_iterations(npid_runs):
    runner, hook = npid_runs.runner, monitor(npid_runs.runner)
    scalars = runner.message_hub.log_scalars
    for key in ('train/rankme', 'train/alignment', 'train/uniformity',
                'val/knn_loo_top1'):
        assert key in scalars, key
    its = [it for it, _ in hook.history]
    assert its == [0, 3, 6, ITERS]
    last = hook.history[-1][1]
    assert scalars['train/rankme'].current() == pytest.approx(last['rankme'])
    # RankMe within [1, min(N, D)] (24 images, D=16)
    for _, v in hook.history:
        assert 1.0 - 1e-4 <= v['rankme'] <= 16 + 1e-4
        assert 0.0 <= v['alignment'] <= 4.0
        assert v['uniformity'] <= 1e-6
        assert 0.0 <= v['knn_loo_top1'] <= 100.0
        assert {'bank_norm_min', 'bank_norm_max', 'bank_mean_norm'} <= set(v)
    # two different augmentations of each image: not perfectly aligned
    assert hook.history[0][1]['alignment'] > 0
    png = npid_runs.work_dir / 'label_free_monitor.png'
    assert png.stat().st_size > 10000
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with open(npid_runs.work_dir / 'label_free_monitor.json') as f:
        record = json.load(f)
    assert [h['iter'] for h in record['history']] == its
    assert record['history'][1]['rankme'] == pytest.approx(
        hook.history[1][1]['rankme'])
    assert record['num_samples'] == 24 and record['held_out'] is False
    # the hook's own loss record: outputs['loss'] after each iteration
    assert record['loss'] == [[i + 1, loss] for i, loss in npid_runs.losses]


def test_training_is_identical_without_the_hook(npid_runs):
    assert len(npid_runs.losses) == ITERS
    assert npid_runs.losses == npid_runs.baseline


def test_evaluation_is_repeatable_and_leaves_the_model_as_it_was(npid_runs):
    runner, hook = npid_runs.runner, monitor(npid_runs.runner)
    model = runner.model
    model.train()
    model.backbone.layer1.eval()  # a module kept in eval on purpose
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    a = hook._evaluate(runner, 100)
    b = hook._evaluate(runner, 100)
    assert a == b  # the same images and the same two views each time
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and not model.backbone.layer1.training
    assert model.neck.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [it for it, _ in hook.history].count(100) == 1


def test_resume_keeps_the_history(npid_runs, data_root, tmp_path):
    """Resume from the with-hook run's epoch-1 checkpoint (iteration 4): the
    record of the whole run is the uninterrupted run's."""
    full = monitor(npid_runs.runner)
    ckpt_path = npid_runs.work_dir / 'epoch_1.pth'
    ckpt = torch.load(ckpt_path, weights_only=False)
    saved = ckpt['label_free_monitor']
    assert [it for it, _ in saved['history']] == [0, 3]
    assert [it for it, _ in saved['losses']] == [1, 2, 3, 4]
    cfg = npid_cfg(data_root, tmp_path / 'resumed')
    cfg.resume, cfg.load_from = True, str(ckpt_path)
    resumed = monitor(run(cfg))
    # resumed at 4 (no record there: measured once more), then 6 and 8
    assert [it for it, _ in resumed.history] == [0, 3, 4, 6, ITERS]
    by_iter = dict(resumed.history)
    for it, values in full.history:
        if it <= ITERS:  # the fixture's extra evaluations aside
            for k, v in values.items():
                assert by_iter[it][k] == pytest.approx(v, rel=1e-4,
                                                       abs=1e-6), (it, k)
    assert resumed.losses == [(i + 1, loss) for i, loss in npid_runs.losses]
    with open(tmp_path / 'resumed' / 'label_free_monitor.json') as f:
        assert len(json.load(f)['loss']) == ITERS


def test_batch_augment_views_leave_the_model_stream_alone(data_root,
                                                          tmp_path):
    """The 15-minute recipe augments on device (BatchAugmentPreprocessor):
    the hook's views come from a private copy of the augmentation, so the
    model's stream advances once per training batch only, and the sample
    is held out (the test split, given as ``dataset=``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/npid/'
        'npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py'))
    cfg.work_dir = str(tmp_path / 'w')
    cfg.model.bank_size = 64
    cfg.model.head.loss.num_negatives = 16
    cfg.model.backbone.stem_channels = cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = 64
    tiny_fmnist_runtime(cfg, data_root, epochs=1, batch_size=16)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    held_out = dict(type='FashionMNISTIDX', data_root=str(data_root),
                    split='test', pipeline=[dict(type='PackInputs')])
    cfg.custom_hooks.append(dict(type=HOOK, interval=2, num_samples=16,
                                 batch_size=16, dataset=held_out))
    rec = LossRecorder()
    runner = run(cfg, rec)
    hook = monitor(runner)
    assert [it for it, _ in hook.history] == [0, 2, 4]
    assert hook.history[0][1]['alignment'] > 0  # two distinct views
    assert len(hook._raw) == 16 and hook.record()['held_out'] is True
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    assert int(ckpt['state_dict']['data_preprocessor.augment.rng_calls']) \
        == 4  # 4 batches, nothing drawn by the hook
    # and the same losses as without the hook
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != HOOK]
    cfg.work_dir = str(tmp_path / 'without')
    base = LossRecorder()
    run(cfg, base)
    assert rec.losses == base.losses and len(rec.losses) == 4


@pytest.mark.parametrize('kwargs,match', [
    (dict(interval=0), 'interval=0'),
    (dict(interval=2.5), 'interval=2.5'),
    (dict(num_samples=1), 'num_samples=1'),
    (dict(batch_size=0), 'batch_size=0'),
    (dict(knn_k=0), 'knn_k=0'),
    (dict(loss_interval=-1), 'loss_interval=-1'),
    (dict(seed=-3), 'seed=-3'),
    (dict(alpha=0), 'alpha=0'),
    (dict(t=float('nan')), 't=nan'),
    (dict(knn_temperature=-0.1), 'knn_temperature=-0.1'),
    (dict(dataset='data/held'), 'dataset must be a dataset config'),
])
def test_bad_arguments_are_named(kwargs, match):
    from mmpretrain.registry import HOOKS

    import mm_instdisc.engine  # noqa: F401
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type=HOOK, **kwargs))


def test_load_from_without_resume_starts_a_new_record():
    from mm_instdisc.engine.hooks import LabelFreeMonitorHook
    hook = LabelFreeMonitorHook()
    state = dict(history=[[0, dict(rankme=3.0)], [5, dict(rankme=2.0)]],
                 losses=[[5, 1.0]])
    hook.after_load_checkpoint(None, dict(label_free_monitor=state))
    hook._adopt_checkpoint(SimpleNamespace(iter=0))  # load_from only
    assert hook.history == [] and hook.losses == []
    hook.after_load_checkpoint(None, dict(label_free_monitor=state))
    hook._adopt_checkpoint(SimpleNamespace(iter=5))  # a resume at 5
    assert hook.history == [(0, dict(rankme=3.0)), (5, dict(rankme=2.0))]
    assert hook.losses == [(5, 1.0)]


def test_pipeline_is_found_and_replaced_inside_dataset_wrappers():
    from mm_instdisc.engine.hooks.label_free_monitor_hook import (
        _find_pipeline, _with_pipeline)
    inner = dict(type='CustomDataset', pipeline=[dict(type='A')])
    cfg = dict(type='RepeatDataset', times=2, dataset=inner)
    assert _find_pipeline(cfg) == [dict(type='A')]
    new = _with_pipeline(cfg, [dict(type='B')])
    assert new['dataset']['pipeline'] == [dict(type='B')]
    assert inner['pipeline'] == [dict(type='A')]  # the original untouched
    concat = dict(type='ConcatDataset', datasets=[inner, copy.deepcopy(inner)])
    assert [d['pipeline'] for d in _with_pipeline(
        concat, [dict(type='B')])['datasets']] == [[dict(type='B')]] * 2
