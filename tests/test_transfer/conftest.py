"""Fixtures of the transfer tests: tiny Fashion-MNIST, saved NPID checkpoint,
tiny SplitMask model."""
import os

import pytest
import torch

from tests.helpers import ROOT, write_fashion_mnist

NPID_MODEL_CONFIG = os.path.join(
    ROOT, 'configs/_base_/models/npid_resnet18-w16_fashion-mnist.py')
SPLITMASK_MODEL_CONFIG = os.path.join(
    ROOT, 'configs/_base_/models/splitmask_vit-w128d4-p4_fashion-mnist.py')
# a tiny ViT for the SplitMask transfer tests (the configs' is 128 x 4)
TINY_VIT_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                     feedforward_channels=64)


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
    _perturb(model)
    return model


def _perturb(model):
    """Make the float weights distinct from a fresh init (and each other)."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)


def build_splitmask(vocab_size: int = 64):
    """The CPU SplitMask model of the Fashion-MNIST config, with a tiny ViT.

    SplitMaskViT on 1x32x32 images with 4x4 patches, layer scale 0.1 and
    out_type 'raw' as configured, but ``TINY_VIT_ARCH`` wide and deep (the
    decoder, head and tokeniser shrunk to match).
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mm_instdisc.models  # noqa: F401
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(SPLITMASK_MODEL_CONFIG)
    dims, heads = TINY_VIT_ARCH['embed_dims'], TINY_VIT_ARCH['num_heads']
    cfg.model.backbone.arch = dict(TINY_VIT_ARCH)
    cfg.model.neck.update(embed_dims=dims, num_heads=heads)
    cfg.model.head.update(embed_dims=dims, vocab_size=vocab_size)
    cfg.model.target_generator.vocab_size = vocab_size
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    _perturb(model)
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
