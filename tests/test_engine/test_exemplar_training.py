"""Exemplar through mmengine's Runner (queue/label alignment, checkpoint,
exact resume, unlabelled data), in 2-process gloo runs (identical queues)
and with tools/dist_train.sh; the configs' recipes."""
import copy
import os

import pytest
import torch

from mm_instdisc.utils.dist import shutdown_distributed
from tests.helpers import (EXEMPLAR_FMNIST_CONFIG, EXEMPLAR_V1_FMNIST_CONFIG,
                           ROOT, LossRecorder, build_tiny_exemplar,
                           exemplar_views, spawn_gloo, tiny_exemplar_cfg,
                           write_fashion_mnist)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def make_runner(cfg, *hooks):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    for h in hooks:
        runner.register_hook(h)
    return runner


class QueueRecorder:
    """Each iteration: the batch's labels, the pointer before and after, and
    the queue's labels after (to check that labels land next to keys)."""

    def __init__(self):
        from mmengine.hooks import Hook

        rec = self

        class _Hook(Hook):
            priority = 'LOW'

            def before_train_iter(self, runner, batch_idx, data_batch=None):
                rec.ptr_before = int(runner.model.queue.ptr)

            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                q = runner.model.queue
                rec.rows.append(dict(
                    batch_labels=[int(ds.gt_label)
                                  for ds in data_batch['data_samples']],
                    ptr_before=rec.ptr_before, ptr=int(q.ptr),
                    labels=q.labels.clone(), keys=q.keys.clone(),
                    excluded=float(outputs['neg_excluded'])))

        self.rows = []
        self.hook = _Hook()


def test_train_fills_label_queue_aligned_with_batches(data_root, tmp_path):
    rec = QueueRecorder()
    cfg = tiny_exemplar_cfg(data_root, tmp_path / 'w', epochs=2, queue_len=40)
    runner = make_runner(cfg, rec.hook)
    runner.train()
    rows = rec.rows
    assert len(rows) == 8
    for r in rows:  # 16 keys per step into 40 slots, wrapping around
        assert r['ptr'] == (r['ptr_before'] + 16) % 40
        slots = [(r['ptr_before'] + i) % 40 for i in range(16)]
        assert r['labels'][slots].tolist() == r['batch_labels']
    assert [r['ptr'] for r in rows] == [16, 32, 8, 24, 0, 16, 32, 8]
    # labels present in the queue: the filter excluded something
    assert any(r['excluded'] > 0 for r in rows[3:])
    ckpt = torch.load(tmp_path / 'w' / 'epoch_2.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert torch.equal(sd['queue.labels'], runner.model.queue.labels)
    assert torch.equal(sd['queue.keys'], runner.model.queue.keys)
    assert int(sd['queue.ptr']) == 8
    assert (sd['queue.labels'] >= 0).all()  # 128 keys filled all 40 slots
    assert 'train/neg_excluded' in runner.message_hub.log_scalars


def test_resume_is_exact(data_root, tmp_path):
    """Stop after epoch 1 (the queue not yet full), resume: the same losses,
    weights, key encoder, queues and optimizer state."""
    full_rec, resumed_rec = LossRecorder(), LossRecorder()
    cfg = tiny_exemplar_cfg(data_root, tmp_path / 'full', epochs=3,
                            queue_len=72)
    full = make_runner(cfg, full_rec.hook)
    full.train()

    cfg_a = tiny_exemplar_cfg(data_root, tmp_path / 'part', epochs=3,
                              queue_len=72)
    cfg_a.train_cfg.max_epochs = 1  # the same schedule, stopped early
    make_runner(cfg_a).train()
    ckpt = torch.load(tmp_path / 'part' / 'epoch_1.pth', weights_only=False)
    assert int(ckpt['state_dict']['queue.ptr']) == 64
    assert int((ckpt['state_dict']['queue.labels'] == -1).sum()) == 8
    cfg_b = tiny_exemplar_cfg(data_root, tmp_path / 'part', epochs=3,
                              queue_len=72)
    cfg_b.resume = True
    cfg_b.load_from = str(tmp_path / 'part' / 'epoch_1.pth')
    resumed = make_runner(cfg_b, resumed_rec.hook)
    resumed.train()

    tail = [loss for loss in full_rec.losses if loss[0] >= 4]
    assert len(tail) == 8
    assert resumed_rec.losses == tail
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in ('queue.keys', 'queue.labels', 'queue.ptr'):
        assert key in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = full.optim_wrapper.state_dict()
    sb = resumed.optim_wrapper.state_dict()
    for pid in sa['state']:
        for name, v in sa['state'][pid].items():
            assert torch.equal(v, sb['state'][pid][name])


def test_unlabelled_dataset_is_a_clear_error(tmp_path):
    """An image folder read without labels (CustomDataset, with_label=False)
    fails at the first step, naming gt_label."""
    import numpy as np
    from PIL import Image
    folder = tmp_path / 'imgs'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(
            folder / f'{i}.png')
    cfg = tiny_exemplar_cfg(tmp_path, tmp_path / 'w', epochs=1, batch_size=4)
    view = [dict(type='RandomFlip', prob=0.5)]
    cfg.train_dataloader.dataset = dict(
        type='CustomDataset', data_root=str(folder), with_label=False,
        pipeline=[
            dict(type='LoadImageFromFile', color_type='grayscale'),
            dict(type='MultiView', num_views=2, transforms=[view]),
            dict(type='PackInputs')
        ])
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    with pytest.raises(ValueError, match="no 'gt_label'.*labelled dataset"):
        make_runner(cfg).train()


# -------------------------------------------------------- distributed
def _worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # different init on purpose
    model = build_tiny_exemplar(queue_len=20)
    # identical starting queue and weights, as the Runner's seed gives
    for t in list(model.state_dict().values()):
        dist.broadcast(t, src=0)
    ddp = torch.nn.parallel.DistributedDataParallel(model,
                                                    broadcast_buffers=False)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    orig = model.keys
    local_keys = []

    def spy(inputs):
        k = orig(inputs)
        local_keys.append(k.clone())
        return k

    model.keys = spy
    rows = []
    for step in range(4):  # 8 global keys a step into 20 slots: wraps
        labels = [(3 * step + rank + i) % 10 for i in range(4)]
        data = model.data_preprocessor(
            exemplar_views(labels, seed=10 * step + rank), True)
        loss = ddp(**data, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows.append(dict(keys=model.queue.keys.clone(),
                         labels=model.queue.labels.clone(),
                         ptr=int(model.queue.ptr), local=local_keys[-1],
                         batch_labels=labels))
    torch.save(rows, os.path.join(out, f'rank{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early aborts gloo now and then


@pytest.mark.dist
def test_queues_identical_across_two_gloo_ranks(tmp_path):
    spawn_gloo(_worker, 2, str(tmp_path))
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    assert [r['ptr'] for r in r0] == [8, 16, 4, 12]
    for step, (a, b) in enumerate(zip(r0, r1)):
        assert torch.equal(a['keys'], b['keys']), f'keys differ, step {step}'
        assert torch.equal(a['labels'], b['labels']), f'step {step}'
        assert a['ptr'] == b['ptr']
        # rank 0's keys and labels, then rank 1's, at the pointer
        start = (8 * step) % 20
        slots0 = [(start + i) % 20 for i in range(4)]
        slots1 = [(start + 4 + i) % 20 for i in range(4)]
        assert a['labels'][slots0].tolist() == a['batch_labels']
        assert a['labels'][slots1].tolist() == b['batch_labels']
        assert torch.equal(a['keys'][slots0], a['local'])
        assert torch.equal(a['keys'][slots1], b['local'])
        assert not torch.allclose(a['local'], b['local'])


# ------------------------------------------------------------- configs
EXEMPLAR_CONFIGS = sorted(
    os.path.join(ROOT, 'configs', 'exemplar', f)
    for f in os.listdir(os.path.join(ROOT, 'configs', 'exemplar')))
EXPECTED = {  # file -> (K, t, neck, lr, scheduler, epochs, batch)
    'exemplar-v1_resnet50_8xb32-steplr-200e_in1k.py':
    (65536, 0.07, 'LinearNeck', 0.03, 'MultiStepLR', 200, 32),
    'exemplar-v2_resnet50_8xb32-coslr-200e_in1k.py':
    (65536, 0.2, 'MoCoV2Neck', 0.03, 'CosineAnnealingLR', 200, 32),
    'exemplar-v1_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py':
    (4096, 0.07, 'LinearNeck', 0.03, 'CosineAnnealingLR', 10, 128),
    'exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py':
    (4096, 0.2, 'MoCoV2Neck', 0.03, 'CosineAnnealingLR', 10, 128),
    'exemplar-v2_resnet18-w16_1xb64-coslr-2e_fashion-mnist-10k.py':
    (4096, 0.2, 'MoCoV2Neck', 0.03, 'CosineAnnealingLR', 2, 64),
    'exemplar-v2_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py':
    (8192, 0.2, 'MoCoV2Neck', 0.06, 'CosineAnnealingLR', 8, 256),
    'exemplar-v2_resnet18-w32_1xb128-bf16-coslr-100e_custom.py':
    (4096, 0.2, 'MoCoV2Neck', 0.06, 'CosineAnnealingLR', 100, 128),
}


def test_every_exemplar_config_is_checked():
    assert sorted(os.path.basename(p) for p in EXEMPLAR_CONFIGS) == sorted(
        EXPECTED)


@pytest.mark.parametrize('path', EXEMPLAR_CONFIGS,
                         ids=[os.path.basename(p) for p in EXEMPLAR_CONFIGS])
def test_exemplar_config_recipe(path):
    from mmengine.config import Config
    k, t, neck, lr, sched, epochs, batch = EXPECTED[os.path.basename(path)]
    cfg = Config.fromfile(path)
    m = cfg.model
    assert m.type == 'ExemplarMoCo'
    assert (m.queue_len, m.head.loss.temperature, m.neck.type) == (k, t, neck)
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.param_scheduler[-1].type == sched  # after any warm-up
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == batch
    views = [p for p in cfg.train_dataloader.dataset.pipeline
             if p.type == 'MultiView']
    if not views:  # the views are made by the batch augmentation
        assert m.data_preprocessor.augment.num_views == 2
        return
    views = views[0]
    assert views.num_views == 2
    if 'in1k' in path:
        assert m.momentum == 0.001 and m.backbone.depth == 50
        assert cfg.auto_scale_lr.base_batch_size == 256
        assert cfg.param_scheduler[0].get('milestones', [120, 160]) == [
            120, 160]
        names = [t.type for t in views.transforms[0]]
        # MoCo v1 vs v2 augmentation
        assert ('GaussianBlur' in names) == ('v2' in path)
        assert 'RandomGrayscale' in names and 'RandomResizedCrop' in names


def test_fashion_mnist_v1_trains(data_root, tmp_path):
    cfg = tiny_exemplar_cfg(data_root, tmp_path / 'w', epochs=1,
                            config=EXEMPLAR_V1_FMNIST_CONFIG)
    del cfg.model.neck.hid_channels
    rec = LossRecorder()
    make_runner(cfg, rec.hook).train()
    assert len(rec.losses) == 4
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in rec.losses)


def test_supervised_baseline_config_trains_and_tests(data_root, tmp_path):
    """The supervised cross-entropy baseline: the same backbone as the
    Exemplar config, accuracy as test metric."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/supervised/'
        'resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'))
    ex = Config.fromfile(EXEMPLAR_FMNIST_CONFIG)
    assert cfg.model.backbone == ex.model.backbone
    assert cfg.train_dataloader.batch_size == ex.train_dataloader.batch_size
    assert cfg.optim_wrapper == ex.optim_wrapper
    assert cfg.param_scheduler == ex.param_scheduler
    assert dict(cfg.test_evaluator) == dict(type='Accuracy', topk=(1, ))
    cfg.work_dir = str(tmp_path / 'w')
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(data_root)
    cfg.train_dataloader.batch_size = 16
    cfg.model.backbone.stem_channels = cfg.model.backbone.base_channels = 8
    cfg.model.head.in_channels = 64
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    cfg.log_level = 'WARNING'
    rec = LossRecorder()
    runner = make_runner(cfg, rec.hook)
    runner.train()
    assert len(rec.losses) == 4
    metrics = runner.test()
    assert 0 <= metrics['accuracy/top1'] <= 100
