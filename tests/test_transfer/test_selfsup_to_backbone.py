"""Self-supervised checkpoint -> backbone weights that downstream models load.

Extension point for other backbones (SplitMask's ViT): append a
``RoundTripCase`` to ``ROUND_TRIP_CASES``; ``test_round_trip`` then converts
a checkpoint of the self-supervised model and loads it strictly into the
downstream backbone.
"""
import os
import subprocess
import sys
from typing import Callable, List, NamedTuple

import pytest
import torch
from torch import nn

from tests.helpers import ROOT
from tests.test_transfer.conftest import build_npid, save_selfsup_checkpoint

from mm_instdisc.apis.selfsup_to_backbone import (check_backbone_keys,
                                                   convert_selfsup_checkpoint,
                                                   get_state_dict,
                                                   selfsup_to_backbone)

FMNIST_DET_CONFIG = os.path.join(
    ROOT, 'configs/benchmarks/mmdetection/fmnist_coco/'
    'mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py')
LINEAR_CONFIG = os.path.join(
    ROOT, 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb128-linear-coslr-10e_fashion-mnist.py')


class RoundTripCase(NamedTuple):
    """A self-supervised model and the downstream backbone it transfers to.

    Args:
        name: Test id.
        make_selfsup: Builds the self-supervised model (its ``state_dict``
            has ``backbone.*`` keys among others).
        make_target: Builds the downstream backbone (e.g. from the mmdet or
            mmpretrain registry) that must load the converted weights with
            ``strict=True``.
    """
    name: str
    make_selfsup: Callable[[], nn.Module]
    make_target: Callable[[], nn.Module]


def _mmpretrain_backbone(**cfg) -> nn.Module:
    from mmpretrain.registry import MODELS
    return MODELS.build(cfg)


def _mmdet_backbone(**cfg) -> nn.Module:
    import mm_instdisc.det  # noqa: F401
    from mmdet.registry import MODELS
    return MODELS.build(cfg)


SMALL_RESNET = dict(depth=18, stem_channels=8, base_channels=8)

ROUND_TRIP_CASES: List[RoundTripCase] = [
    # NPID's CPU model -> the ResNet_CIFAR of our fine-tuning configs
    RoundTripCase(
        'npid-resnet_cifar-to-mmpretrain',
        lambda: build_npid(),
        lambda: _mmpretrain_backbone(
            type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=16,
            base_channels=16, zero_init_residual=False)),
    # an ImageNet-style ResNet pretrained in mmpretrain -> mmdet's ResNet
    RoundTripCase(
        'npid-resnet-to-mmdet',
        lambda: build_npid(type='ResNet', in_channels=3, **SMALL_RESNET),
        lambda: _mmdet_backbone(type='ResNet', out_indices=(0, 1, 2, 3),
                                **SMALL_RESNET)),
    # ... and to mmpretrain's ResNet (linear probe / semi-supervised)
    RoundTripCase(
        'npid-resnet-to-mmpretrain',
        lambda: build_npid(type='ResNet', in_channels=3, **SMALL_RESNET),
        lambda: _mmpretrain_backbone(type='ResNet', **SMALL_RESNET)),
    # SplitMask (ViT) appends its case here.
]


@pytest.mark.parametrize('case', ROUND_TRIP_CASES,
                         ids=[c.name for c in ROUND_TRIP_CASES])
@pytest.mark.parametrize('out_prefix', ['', 'backbone.'])
def test_round_trip(case, out_prefix, tmp_path):
    selfsup = case.make_selfsup()
    src = save_selfsup_checkpoint(selfsup, tmp_path / 'selfsup.pth')
    dst = tmp_path / 'backbone.pth'
    convert_selfsup_checkpoint(src, str(dst), out_prefix=out_prefix)

    # a plain weights-only torch.load reads it (no pickled objects)
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    weights = saved['state_dict']
    assert all(k.startswith(out_prefix) for k in weights)
    expected = selfsup.backbone.state_dict()
    assert len(weights) == len(expected)

    target = case.make_target()
    plain = {k[len(out_prefix):]: v for k, v in weights.items()}
    result = target.load_state_dict(plain, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in target.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # nothing of the algorithm came along
    assert not any(k.split('.')[0] in ('neck', 'head', 'memory_bank')
                   for k in plain)


def test_pretrained_init_cfg_loads_raw_selfsup_checkpoint(tmp_path):
    """mmdet ResNet + init_cfg Pretrained prefix 'backbone.' on our .pth."""
    selfsup = build_npid(type='ResNet', in_channels=3, **SMALL_RESNET)
    src = save_selfsup_checkpoint(selfsup, tmp_path / 'epoch_3.pth')
    det_backbone = _mmdet_backbone(
        type='ResNet', out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=src, prefix='backbone.'),
        **SMALL_RESNET)
    before = det_backbone.layer1[0].conv1.weight.clone()
    det_backbone.init_weights()
    assert not torch.equal(before, det_backbone.layer1[0].conv1.weight)
    expected = selfsup.backbone.state_dict()
    got = det_backbone.state_dict()
    assert set(got) == set(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_fmnist_detector_loads_npid_checkpoint(npid_model, npid_ckpt):
    """The CPU Mask R-CNN config's backbone takes the NPID demo checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    import mm_instdisc.det  # noqa: F401
    from mmdet.registry import MODELS
    cfg = Config.fromfile(FMNIST_DET_CONFIG)
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg.checkpoint = npid_ckpt
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    expected = npid_model.backbone.state_dict()
    got = detector.backbone.state_dict()
    assert set(got) == set(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_no_backbone_keys_is_a_clear_error():
    state = {'encoder.conv.weight': torch.zeros(1), 'head.fc.bias':
             torch.zeros(1), 'memory_bank.bank': torch.zeros(2, 2)}
    with pytest.raises(ValueError, match=r'No backbone\.\* keys') as err:
        selfsup_to_backbone(state)
    for group in ('encoder', 'head', 'memory_bank'):
        assert group in str(err.value)


def test_other_prefixes_and_bad_arguments():
    state = {'encoder_k.module.backbone.conv1.weight': torch.ones(2),
             'backbone.conv1.weight': torch.zeros(2)}
    out = selfsup_to_backbone(state, src_prefix='encoder_k.module.backbone.')
    assert list(out) == ['conv1.weight'] and out['conv1.weight'].sum() == 2
    with pytest.raises(ValueError, match="Illegal out_prefix: 'neck.'"):
        selfsup_to_backbone(state, out_prefix='neck.')
    with pytest.raises(ValueError, match="Illegal src_prefix: 'backbone'"):
        selfsup_to_backbone(state, src_prefix='backbone')
    # DDP's module. prefix and the checkpoint layouts
    ddp = {'module.backbone.w': torch.zeros(1), 'module.head.w': torch.ones(1)}
    assert list(get_state_dict(dict(state_dict=ddp))) == ['backbone.w',
                                                          'head.w']
    assert list(get_state_dict(dict(model={'a': torch.zeros(1)}))) == ['a']
    with pytest.raises(TypeError, match='no tensors'):
        get_state_dict(dict(meta=dict(epoch=1)))


def test_check_backbone_keys_reports_mismatches():
    target = nn.Sequential(nn.Linear(2, 3))
    good = {k: v.clone() for k, v in target.state_dict().items()}
    assert check_backbone_keys(good, target) == ([], [])
    bad = dict(good, extra=torch.zeros(1))
    bad['0.weight'] = torch.zeros(4, 2)
    missing, unexpected = check_backbone_keys(bad, target)
    assert missing == ['0.weight'] and set(unexpected) == {'0.weight', 'extra'}


def _run_tool(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, 'tools/model_converters/selfsup_to_backbone.py',
         *args], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=300)


def test_converter_tool(npid_ckpt, tmp_path):
    dst = tmp_path / 'out' / 'npid_backbone.pth'
    r = _run_tool(npid_ckpt, str(dst), '--out-prefix', 'backbone.',
                  '--verify', LINEAR_CONFIG)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'verified: all' in r.stdout
    keys = torch.load(dst, weights_only=True)['state_dict']
    assert keys and all(k.startswith('backbone.') for k in keys)

    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(2)}), bad)
    r = _run_tool(str(bad), str(tmp_path / 'x.pth'))
    assert r.returncode != 0
    assert 'No backbone.* keys' in r.stderr and "['head']" in r.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_res_layer_extra_norm():
    import mm_instdisc.det  # noqa: F401
    import mmpretrain.models.utils  # noqa: F401  (its own registration)
    from mmdet.registry import MODELS

    from mm_instdisc.det import ResLayerExtraNorm
    assert MODELS.get('ResLayerExtraNorm') is ResLayerExtraNorm
    head = MODELS.build(dict(type='ResLayerExtraNorm', depth=18, stage=3,
                             norm_cfg=dict(type='BN', requires_grad=True),
                             norm_eval=False))
    assert isinstance(head.norm, nn.BatchNorm2d)
    assert head.norm.num_features == 512
    head.train()
    y = head(torch.randn(2, 256, 14, 14))
    assert y.shape == (2, 512, 7, 7)
    # BN in training mode: each channel normalised over the batch
    assert y.mean((0, 2, 3)).abs().max() < 1e-4
    assert 'norm.weight' in head.state_dict()
    # res5 weights come from a backbone checkpoint (prefix 'backbone.')
    backbone = _mmdet_backbone(type='ResNet', depth=18)
    layer4 = {k[len('layer4.'):]: v for k, v in backbone.state_dict().items()
              if k.startswith('layer4.')}
    missing, unexpected = head.layer4.load_state_dict(layer4, strict=True)
    assert not missing and not unexpected
