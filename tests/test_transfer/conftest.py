"""Fixtures of the transfer tests: tiny Fashion-MNIST, a saved NPID checkpoint."""
import os

import pytest
import torch

from tests.helpers import ROOT, write_fashion_mnist

NPID_MODEL_CONFIG = os.path.join(
    ROOT, 'configs/_base_/models/npid_resnet18-w16_fashion-mnist.py')


def build_npid(bank_size: int = 64, **backbone):
    """The CPU NPID model (ResNet_CIFAR width 16 unless overridden)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mm_instdisc.models  # noqa: F401
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(NPID_MODEL_CONFIG)
    cfg.model.bank_size = bank_size
    cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # make the weights (and the bank) distinct from a fresh init; BN running
    # statistics stay plausible (mean ~0, var ~1) for the detector's eval
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)
    return model


def save_selfsup_checkpoint(model, path) -> str:
    """Saved like mmengine's CheckpointHook: meta, state_dict, optimizer."""
    torch.save(
        dict(meta=dict(epoch=3, iter=30, mmengine_version='0.10.7'),
             state_dict=model.state_dict(),
             message_hub=dict(log_scalars={}),
             optimizer=dict(state={}, param_groups=[dict(lr=0.03)])),
        path)
    return str(path)


@pytest.fixture(scope='session')
def npid_model():
    return build_npid()


@pytest.fixture(scope='session')
def npid_ckpt(npid_model, tmp_path_factory):
    path = tmp_path_factory.mktemp('npid') / 'epoch_3.pth'
    return save_selfsup_checkpoint(npid_model, path)


@pytest.fixture(scope='session')
def fmnist_root(tmp_path_factory):
    return str(write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                                   n_train=200, n_test=40))
