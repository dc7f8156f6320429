"""ParametricInstance through mmengine's Runner: kNN validation without a
memory bank (KNNReferenceHook) and the classifier in the checkpoint."""
import copy

import pytest
import torch

from tests.helpers import (PARAMETRIC_CONFIG, tiny_fmnist_runtime,
                           write_fashion_mnist)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def tiny_cfg(data_root, work_dir, n_train=64, epochs=1, batch_size=16):
    """The Fashion-MNIST parametric-softmax config shrunk to seconds."""
    from mmengine.config import Config
    cfg = Config.fromfile(PARAMETRIC_CONFIG)
    cfg.work_dir = str(work_dir)
    m = cfg.model
    m.num_instances = n_train
    m.backbone.stem_channels = m.backbone.base_channels = 8
    m.neck.in_channels = 64
    m.feat_dim = m.neck.out_channels = 16
    tiny_fmnist_runtime(cfg, data_root, epochs, batch_size)
    for h in cfg.custom_hooks:
        if h.type == 'KNNReferenceHook':
            h.batch_size = 16
    return cfg


def run(cfg):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    return runner


def test_train_validates_with_knn_and_checkpoints_classifier(data_root,
                                                             tmp_path):
    cfg = tiny_cfg(data_root, tmp_path / 'w')
    runner = run(cfg)
    model = runner.model
    w = model.head.loss_module.weight
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert sd['head.loss_module.weight'].shape == (64, 16)
    assert torch.equal(sd['head.loss_module.weight'], w.detach())
    assert not any('memory_bank' in k for k in sd)
    # the classifier is in the optimizer (SGD momentum state of its rows)
    params = [p for g in runner.optim_wrapper.optimizer.param_groups
              for p in g['params']]
    assert any(p is w for p in params)
    assert any(v['momentum_buffer'].shape == (64, 16)
               for v in ckpt['optimizer']['state'].values())
    scalars = runner.message_hub.log_scalars
    assert 'val/knn/top1_k5' in scalars
    assert 0 <= scalars['val/knn/top1_k5'].current() <= 100
    assert 'train/inst_acc' in scalars
    assert torch.isfinite(torch.tensor(scalars['train/loss'].current()))


def test_too_few_instances_is_a_clear_error(data_root, tmp_path):
    cfg = tiny_cfg(data_root, tmp_path / 'w')
    cfg.model.num_instances = 50  # the training set has 64 images
    with pytest.raises(ValueError, match='num_instances must equal the '
                       'training set size'):
        run(cfg)
