"""BatchAugmentPreprocessor: augment in training, only normalise otherwise."""
import copy

import pytest
import torch

from tests.helpers import FMNIST_CONFIG

MEAN, STD = [120.0, 110.0, 100.0], [50.0, 55.0, 60.0]
AUGMENT = dict(
    crop_size=16,
    saturation=0.4,
    hue=0.1,
    grayscale_prob=0.2,
    num_views=2,
    seed=0)


def build(**kwargs):
    from mmpretrain.registry import MODELS

    import mm_instdisc.models.data_preprocessors  # noqa: F401
    cfg = dict(
        type='BatchAugmentPreprocessor', mean=MEAN, std=STD, augment=AUGMENT)
    return MODELS.build({**cfg, **kwargs})


def batch(b=4, size=24, seed=0):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(
        0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g)
    return dict(inputs=x, data_samples=[DataSample() for _ in range(b)])


def normalise(x):
    return (x.float() - torch.tensor(MEAN).view(
        3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def test_training_returns_augmented_normalised_views():
    from mm_instdisc.modules.batch_augment import BatchAugment
    data = batch()
    out = build()(data, training=True)
    assert isinstance(out['inputs'], list) and len(out['inputs']) == 2
    assert len(out['data_samples']) == 4
    expected = BatchAugment(**AUGMENT)(data['inputs'])
    for v, e in zip(out['inputs'], expected):
        assert v.shape == (4, 3, 16, 16) and v.dtype == torch.float32
        torch.testing.assert_close(v, normalise(e))
    assert not torch.equal(out['inputs'][0], out['inputs'][1])


def test_eval_only_normalises():
    from mmpretrain.models.utils.data_preprocessor import \
        SelfSupDataPreprocessor
    data = batch()
    out = build()(data, training=False)
    ref = SelfSupDataPreprocessor(mean=MEAN, std=STD)(data, training=False)
    assert torch.equal(out['inputs'], ref['inputs'])
    torch.testing.assert_close(out['inputs'], normalise(data['inputs']))
    # list inputs (a pipeline's views) are passed through as the parent does
    listed = dict(inputs=[data['inputs']], data_samples=None)
    assert torch.equal(build()(listed, False)['inputs'][0], ref['inputs'])


def test_input_layouts():
    data = batch()
    ref = build()(data, training=True)['inputs']
    # pseudo_collate: a list of per-sample (C, H, W) tensors is stacked
    per_sample = dict(
        inputs=list(data['inputs']), data_samples=data['data_samples'])
    for a, b in zip(build()(per_sample, True)['inputs'], ref):
        assert torch.equal(a, b)
    # a one-view list is the batch itself
    one = dict(inputs=[data['inputs']], data_samples=data['data_samples'])
    for a, b in zip(build()(one, True)['inputs'], ref):
        assert torch.equal(a, b)
    # num_views views from the pipeline: each augmented once
    two = dict(inputs=[data['inputs'], data['inputs']], data_samples=None)
    out = build()(two, True)['inputs']
    assert len(out) == 2 and out[0].shape == (4, 3, 16, 16)
    three = dict(inputs=[data['inputs']] * 3, data_samples=None)
    with pytest.raises(ValueError, match='3 input views'):
        build()(three, True)


def test_colour_ops_see_rgb():
    from mm_instdisc.modules.batch_augment import BatchAugment
    data = batch()
    x = data['inputs']
    bgr_in = build(bgr_to_rgb=True)(data, training=True)['inputs']
    rgb = BatchAugment(**AUGMENT)(x[:, [2, 1, 0]])
    for v, e in zip(bgr_in, rgb):
        torch.testing.assert_close(v, normalise(e))
    bgr_out = build(rgb_to_bgr=True)(data, training=True)['inputs']
    rgb = BatchAugment(**AUGMENT)(x)
    for v, e in zip(bgr_out, rgb):
        torch.testing.assert_close(v, normalise(e[:, [2, 1, 0]]))


def test_without_augment_is_selfsup_preprocessor():
    data = batch()
    out = build(augment=None)(data, training=True)
    torch.testing.assert_close(out['inputs'], normalise(data['inputs']))


def build_model(seed):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    import mm_instdisc.models.data_preprocessors  # noqa: F401
    cfg = Config.fromfile(FMNIST_CONFIG).model
    cfg.bank_size = 16
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels = 64
    cfg.head.loss.num_negatives = 4
    cfg.data_preprocessor = dict(
        type='BatchAugmentPreprocessor',
        mean=[72.94],
        std=[90.02],
        augment=dict(crop_size=28, blur_prob=0.5, num_views=2, seed=seed))
    return MODELS.build(cfg)


def fmnist_batch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8, generator=g)
    return dict(inputs=x, data_samples=None)


def test_generator_state_in_model_checkpoint(tmp_path):
    from mmengine.runner.checkpoint import (get_state_dict, load_checkpoint,
                                            save_checkpoint, weights_to_cpu)
    model = build_model(seed=0)
    sd = model.state_dict()
    assert int(sd['data_preprocessor.augment.rng_seed']) == 0
    assert int(sd['data_preprocessor.augment.rng_calls']) == 0
    # only tensors: EMAHook copies every state_dict value with .data
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    model.data_preprocessor(fmnist_batch(0), True)
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': weights_to_cpu(get_state_dict(model))},
                    path)
    expected = model.data_preprocessor(fmnist_batch(1), True)['inputs']
    assert len(expected) == 2 and expected[0].shape == (4, 1, 28, 28)

    # torch's load_state_dict
    other = build_model(seed=99)
    other.load_state_dict(torch.load(path, weights_only=False)['state_dict'])
    got = other.data_preprocessor(fmnist_batch(1), True)['inputs']
    for e, g in zip(expected, got):
        assert torch.equal(e, g)
    # mmengine's load_checkpoint (how the runner resumes)
    other = build_model(seed=99)
    load_checkpoint(other, path, map_location='cpu')
    got = other.data_preprocessor(fmnist_batch(1), True)['inputs']
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_each_rank_resumes_its_own_stream(monkeypatch):
    import mm_instdisc.models.data_preprocessors.batch_augment as mod
    monkeypatch.setattr(mod, 'get_rank', lambda: 1)
    rank1 = build_model(seed=0)
    assert rank1.data_preprocessor.augment.stream == 1
    rank1.data_preprocessor(fmnist_batch(0), True)
    expected = rank1.data_preprocessor(fmnist_batch(1), True)['inputs']
    monkeypatch.setattr(mod, 'get_rank', lambda: 0)
    rank0 = build_model(seed=0)
    rank0.data_preprocessor(fmnist_batch(0), True)
    # checkpoints are written by rank 0 (a copy: state_dict() holds the
    # live buffers)
    sd = copy.deepcopy(rank0.state_dict())
    rank0_next = rank0.data_preprocessor(fmnist_batch(1), True)['inputs']
    assert not torch.equal(rank0_next[0], expected[0])
    monkeypatch.setattr(mod, 'get_rank', lambda: 1)
    resumed = build_model(seed=0)
    resumed.load_state_dict(sd)
    got = resumed.data_preprocessor(fmnist_batch(1), True)['inputs']
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_runner_training_and_exact_resume(tmp_path):
    """Through mmengine's Runner: PackInputs-only pipeline, augmentation in
    the preprocessor, and a resumed run equal to an uninterrupted one."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    import mm_instdisc.models.data_preprocessors  # noqa: F401
    from tests.helpers import tiny_npid_cfg, write_fashion_mnist
    data_root = write_fashion_mnist(tmp_path / 'fm', n_train=32, n_test=16)

    class Recorder(Hook):

        def __init__(self):
            self.losses = []

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            self.losses.append((runner.iter, float(outputs['loss'])))

    def run(work_dir, epochs, resume=False):
        cfg = tiny_npid_cfg(
            data_root,
            tmp_path / work_dir,
            n_train=32,
            epochs=epochs,
            batch_size=16)
        cfg.train_dataloader.dataset.pipeline = [dict(type='PackInputs')]
        cfg.model.data_preprocessor = dict(
            type='BatchAugmentPreprocessor',
            mean=[72.94],
            std=[90.02],
            augment=dict(crop_size=28, crop_scale=(0.5, 1.0), seed=1))
        if resume:
            cfg.resume = True
            cfg.load_from = str(tmp_path / work_dir / 'epoch_1.pth')
        runner = Runner.from_cfg(cfg)
        rec = Recorder()
        runner.register_hook(rec, priority='LOW')
        runner.train()
        return runner, rec.losses

    full, full_losses = run('full', epochs=2)
    aug = full.model.data_preprocessor.augment
    assert aug.calls == 4  # 2 epochs x 2 iterations x 1 view
    ckpt = torch.load(tmp_path / 'full' / 'epoch_1.pth', weights_only=False)
    assert int(ckpt['state_dict']['data_preprocessor.augment.rng_calls']) == 2

    run('part', epochs=1)
    resumed, resumed_losses = run('part', epochs=2, resume=True)
    assert resumed_losses == [r for r in full_losses if r[0] >= 2]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
