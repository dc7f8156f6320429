"""NPID through mmengine's Runner: hook, kNN metric, checkpoint and exact resume."""
import copy
import os

import pytest
import torch

from tests.helpers import LossRecorder, tiny_npid_cfg, write_fashion_mnist


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


@pytest.mark.parametrize('init', ['random', 'forward'])
def test_train_logs_knn_and_checkpoints_bank(data_root, tmp_path, init):
    cfg = tiny_npid_cfg(data_root, tmp_path / 'w', epochs=1, init=init)
    runner = run(cfg)
    model = runner.model
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    assert torch.equal(ckpt['state_dict']['memory_bank.bank'],
                       model.memory_bank.bank)
    assert torch.isfinite(ckpt['state_dict']['head.loss_module.log_z'])
    assert 'optimizer' in ckpt and 'rng_states' in ckpt
    scalars = runner.message_hub.log_scalars
    assert 'val/knn/top1_k5' in scalars
    assert 0 <= scalars['val/knn/top1_k5'].current() <= 100
    assert 'train/bank_mean_norm' in scalars


def test_forward_init_fills_bank_with_embeddings(data_root, tmp_path):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    from mm_instdisc.engine.hooks import MemoryBankHook
    cfg = tiny_npid_cfg(data_root, tmp_path / 'w', epochs=1, init='forward')
    runner = Runner.from_cfg(cfg)
    hook = [h for h in runner.hooks if isinstance(h, MemoryBankHook)][0]
    model = runner.model
    hook.before_train(runner)
    ds = runner.train_dataloader.dataset
    model.eval()
    item = runner.train_dataloader.collate_fn([ds[0]])
    # the train pipeline is random, so compare with a fresh forward loosely
    with torch.no_grad():
        f = model.embed(model.data_preprocessor(item, False)['inputs'])
    assert torch.nn.functional.cosine_similarity(
        f[0], model.memory_bank.bank[0], dim=0) > 0.5


def test_bank_length_must_match_dataset(data_root, tmp_path):
    cfg = tiny_npid_cfg(data_root, tmp_path / 'w', epochs=1)
    cfg.model.bank_size = 50
    with pytest.raises(ValueError, match='bank_size=64'):
        run(cfg)


def test_resume_is_exact(data_root, tmp_path):
    """Stop after epoch 1, resume: same weights, bank, Z and losses."""
    full_rec, resumed_rec = LossRecorder(), LossRecorder()
    cfg = tiny_npid_cfg(data_root, tmp_path / 'full', epochs=3)
    full = run(cfg, full_rec)

    cfg_a = tiny_npid_cfg(data_root, tmp_path / 'part', epochs=1)
    run(cfg_a)
    cfg_b = tiny_npid_cfg(data_root, tmp_path / 'part', epochs=3)
    cfg_b.resume = True
    cfg_b.load_from = str(tmp_path / 'part' / 'epoch_1.pth')
    resumed = run(cfg_b, resumed_rec)

    iters_per_epoch = 64 // 16
    tail = [r for r in full_rec.losses if r[0] >= iters_per_epoch]  # 0-based
    assert len(tail) == 2 * iters_per_epoch
    assert resumed_rec.losses == tail
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_fifteen_minute_recipe_trains_and_resumes(data_root, tmp_path):
    """The 15-minute Fashion-MNIST recipe (PackInputs-only pipeline, batched
    augmentation, bf16 autocast wrapper, sampled softmax) runs through the
    Runner on tiny data, and its checkpoint holds the augmentation stream."""
    from mmengine.config import Config

    from tests.helpers import ROOT, tiny_fmnist_runtime
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/npid/'
        'npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py'))
    cfg.work_dir = str(tmp_path / 'w')
    cfg.model.bank_size = 64
    cfg.model.head.loss.num_negatives = 16
    cfg.model.backbone.stem_channels = cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = 64
    tiny_fmnist_runtime(cfg, data_root, epochs=1, batch_size=16)
    runner = run(cfg)
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert int(sd['data_preprocessor.augment.rng_calls']) == 4  # 4 batches
    assert torch.equal(sd['memory_bank.bank'], runner.model.memory_bank.bank)
    scalars = runner.message_hub.log_scalars
    assert 'val/knn/top1_k5' in scalars and 'train/pos_prob' in scalars
