"""Self-supervised checkpoint -> backbone weights that downstream models load.

Extension point for other backbones: append a ``RoundTripCase`` to
``ROUND_TRIP_CASES``; ``test_round_trip`` then converts a checkpoint of the
self-supervised model and loads it strictly into the downstream backbone.
The cases cover NPID's ResNets and SplitMask's ViT (to the backbones of
SplitMask's fine-tuning and Mask R-CNN configs).
"""
import os
from typing import Callable, FrozenSet, List, NamedTuple

import pytest
import torch
from torch import nn

from mm_instdisc.utils.selfsup_to_backbone import (check_backbone_keys,
                                                   convert_selfsup_checkpoint,
                                                   get_state_dict,
                                                   selfsup_to_backbone)
from tests.helpers import (FMNIST_LINEAR_CONFIG, ROOT, TINY_VIT_ARCH,
                           build_npid, build_splitmask, run_converter_tool,
                           save_selfsup_checkpoint)

FMNIST_DET_CONFIG = os.path.join(
    ROOT, 'configs/benchmarks/mmdetection/fmnist_coco/'
    'mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py')
SPLITMASK_FT_CONFIG = os.path.join(
    ROOT, 'configs/splitmask/benchmarks/'
    'vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_fashion-mnist.py')
SPLITMASK_FT_IN1K_CONFIG = os.path.join(
    ROOT, 'configs/splitmask/benchmarks/'
    'vit-small-p16_splitmask-pre_8xb128-coslr-100e_in1k.py')
SPLITMASK_DET_CONFIG = os.path.join(
    ROOT, 'configs/splitmask/mask-rcnn_splitmask-vit-s_fpn_coco.py')


class RoundTripCase(NamedTuple):
    """A self-supervised model and the downstream backbone it transfers to.

    Args:
        name: Test id.
        make_selfsup: Builds the self-supervised model (its ``state_dict``
            has ``backbone.*`` keys among others).
        make_target: Builds the downstream backbone (e.g. from the mmdet or
            mmpretrain registry) that must load the converted weights with
            ``strict=True``.
        new_keys: Keys of the downstream backbone that pretraining has no
            weights for and that keep the target's own init (e.g. ``ln2``,
            the norm after token pooling of mmpretrain's ViT with
            ``out_type='avg_featmap'``). Empty (the default): strict loading,
            every key of the target comes from the checkpoint. Otherwise
            exactly these keys must be missing, and nothing unexpected.
    """
    name: str
    make_selfsup: Callable[[], nn.Module]
    make_target: Callable[[], nn.Module]
    new_keys: FrozenSet[str] = frozenset()


def _mmpretrain_backbone(**cfg) -> nn.Module:
    from mmpretrain.registry import MODELS
    return MODELS.build(cfg)


def _mmdet_backbone(**cfg) -> nn.Module:
    from mmdet.registry import MODELS

    import mm_instdisc.det  # noqa: F401
    return MODELS.build(cfg)


def _config_backbone(config: str, **overrides) -> nn.Module:
    """``model.backbone`` of a config, without its init_cfg, with overrides.

    Built from mmdet's registry for ``default_scope='mmdet'`` (as mmdet
    builds it there), from mmpretrain's otherwise.
    """
    from mmengine.config import Config

    import mm_instdisc.models  # noqa: F401
    cfg = Config.fromfile(config)
    backbone = cfg.model.backbone.copy()
    backbone.pop('init_cfg', None)
    backbone.update(overrides)
    if cfg.get('default_scope') == 'mmdet':
        return _mmdet_backbone(**backbone)
    return _mmpretrain_backbone(**backbone)


SMALL_RESNET = dict(depth=18, stem_channels=8, base_channels=8)
# the configs' ViT options (out_type, layer scale, ...) with the tiny ViT of
# build_splitmask: 1x32x32 images, 4x4 patches
TINY_VIT = dict(arch=dict(TINY_VIT_ARCH), img_size=32, patch_size=4,
                in_channels=1)
# mmpretrain's VisionTransformer with out_type='avg_featmap' normalises the
# pooled tokens with ln2, which the pretrained encoder (out_type='raw') lacks
AVG_FEATMAP_LN2 = frozenset({'ln2.weight', 'ln2.bias'})

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
    # SplitMask's ViT -> the VisionTransformer (avg_featmap) of its
    # fine-tuning configs; only the pooled-token norm ln2 is new
    RoundTripCase(
        'splitmask-vit-to-mmpretrain-finetune',
        lambda: build_splitmask(),
        lambda: _config_backbone(SPLITMASK_FT_CONFIG, **TINY_VIT),
        new_keys=AVG_FEATMAP_LN2),
    RoundTripCase(
        'splitmask-vit-to-mmpretrain-finetune-in1k',
        lambda: build_splitmask(),
        lambda: _config_backbone(SPLITMASK_FT_IN1K_CONFIG, **TINY_VIT),
        new_keys=AVG_FEATMAP_LN2),
    # ... and -> the Mask R-CNN config's backbone: mmdet builds
    # 'mmpretrain.SplitMaskViT' (featmap, learned position embedding)
    RoundTripCase(
        'splitmask-vit-to-mmdet-mask-rcnn',
        lambda: build_splitmask(),
        lambda: _config_backbone(SPLITMASK_DET_CONFIG, **TINY_VIT)),
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
    init = {k: v.clone() for k, v in target.state_dict().items()}
    assert case.new_keys <= set(init)
    plain = {k[len(out_prefix):]: v for k, v in weights.items()}
    assert not case.new_keys & set(plain)
    # what the converter tool's --verify reports
    missing, unexpected = check_backbone_keys(plain, target)
    assert set(missing) == case.new_keys and not unexpected
    result = target.load_state_dict(plain, strict=not case.new_keys)
    assert sorted(result.missing_keys) == sorted(case.new_keys)
    assert not result.unexpected_keys
    got = target.state_dict()
    assert set(got) == set(expected) | case.new_keys
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    for key in case.new_keys:
        assert torch.equal(got[key], init[key]), key
    # nothing of the algorithm came along
    assert not any(k.split('.')[0] in ('neck', 'head', 'memory_bank',
                                       'target_generator') for k in plain)


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


@pytest.mark.parametrize('config,overrides,new_keys', [
    (SPLITMASK_FT_CONFIG, dict(head=dict(in_channels=32)), AVG_FEATMAP_LN2),
    (SPLITMASK_FT_IN1K_CONFIG, dict(head=dict(in_channels=32)),
     AVG_FEATMAP_LN2),
    (SPLITMASK_DET_CONFIG, dict(neck=dict(in_channels=32)), frozenset()),
], ids=['finetune-fmnist', 'finetune-in1k', 'mask-rcnn'])
@pytest.mark.parametrize('weights', ['raw', 'backbone.', ''],
                         ids=['raw-selfsup', 'converted-backbone.',
                              'converted-no-prefix'])
def test_splitmask_configs_init_cfg_load_checkpoint(config, overrides,
                                                    new_keys, weights,
                                                    tmp_path):
    """SplitMask's downstream configs load a (converted) SplitMask checkpoint.

    The config's own ``model.backbone.init_cfg`` (Pretrained, prefix
    'backbone.') with only the checkpoint path set, on the whole model built
    from the config with the tiny ViT; for weights converted without prefix
    the init_cfg's prefix is dropped.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mm_instdisc.models  # noqa: F401
    selfsup = build_splitmask()
    ckpt = save_selfsup_checkpoint(selfsup, tmp_path / 'epoch_20.pth')
    if weights != 'raw':
        dst = str(tmp_path / 'vit_backbone.pth')
        convert_selfsup_checkpoint(ckpt, dst, out_prefix=weights)
        ckpt = dst
    cfg = Config.fromfile(config)
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    init_cfg.checkpoint = ckpt
    if weights == '':
        init_cfg.pop('prefix')
    cfg.model.backbone.update(TINY_VIT)
    cfg.merge_from_dict(dict(model=overrides))
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.registry import MODELS

        import mm_instdisc.det  # noqa: F401
        init_default_scope('mmdet')
    else:
        from mmpretrain.registry import MODELS
        init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    expected = selfsup.backbone.state_dict()
    got = model.backbone.state_dict()
    assert set(got) == set(expected) | new_keys
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    for key in new_keys:  # not in the checkpoint: the model's own init
        assert torch.equal(got[key], before[key]), key
    assert not torch.equal(before['patch_embed.projection.weight'],
                           got['patch_embed.projection.weight'])


def test_fmnist_detector_loads_npid_checkpoint(npid_model, npid_ckpt):
    """The CPU Mask R-CNN config's backbone takes the NPID demo checkpoint."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mm_instdisc.det  # noqa: F401
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


@pytest.mark.subprocess
def test_converter_tool(npid_ckpt, tmp_path):
    dst = tmp_path / 'out' / 'npid_backbone.pth'
    # the one converter test in a real process: what a user runs
    r = run_converter_tool(npid_ckpt, str(dst), '--out-prefix', 'backbone.',
                           '--verify', FMNIST_LINEAR_CONFIG, in_process=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'verified: all' in r.stdout
    keys = torch.load(dst, weights_only=True)['state_dict']
    assert keys and all(k.startswith('backbone.') for k in keys)

    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(2)}), bad)
    r = run_converter_tool(str(bad), str(tmp_path / 'x.pth'))
    assert r.returncode != 0
    assert 'No backbone.* keys' in r.stderr and "['head']" in r.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_res_layer_extra_norm():
    # the C4 config's RoI head is mmpretrain's, registered into mmdet's
    # registry by importing mm_instdisc.det (what the config's
    # custom_imports does)
    from mmdet.registry import MODELS
    from mmpretrain.models.utils.res_layer_extra_norm import ResLayerExtraNorm

    import mm_instdisc.det  # noqa: F401
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


def test_converter_tool_verify_vit_allow_missing(tmp_path):
    """--verify against the SplitMask fine-tuning config: ln2 (the ViT's
    norm after pooling, absent in pretraining) is reported with a hint, and
    accepted only when --allow-missing names it."""
    src = save_selfsup_checkpoint(build_splitmask(),
                                  tmp_path / 'splitmask.pth')
    cfg = tmp_path / 'ft_tiny.py'
    cfg.write_text(f'_base_ = [{SPLITMASK_FT_CONFIG!r}]\n'
                   f'model = dict(backbone=dict({TINY_VIT!r}))\n'
                   .replace('dict({', 'dict(**{'))
    dst = str(tmp_path / 'vit.pth')
    r = run_converter_tool(src, dst, '--verify', str(cfg))
    assert r.returncode != 0
    assert 'ln2.weight' in r.stderr and '--allow-missing' in r.stderr
    r = run_converter_tool(src, dst, '--verify', str(cfg), '--allow-missing',
                           'ln2.*')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'keep their initialisation' in r.stdout and 'ln2.bias' in r.stdout
    # a pattern that does not cover every missing key still fails
    r = run_converter_tool(src, dst, '--verify', str(cfg), '--allow-missing',
                           'ln2.weight')
    assert r.returncode != 0 and 'ln2.bias' in r.stderr
    r = run_converter_tool(src, dst, '--allow-missing', 'ln2.*')
    assert r.returncode != 0 and 'only applies with --verify' in r.stderr


def test_c4_config_builds_with_the_extra_norm():
    """The R50-C4 transfer config (mmdet side) builds, its RoI head being
    mmpretrain's ResLayerExtraNorm with the norm after res5."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.models.utils.res_layer_extra_norm import ResLayerExtraNorm

    import mm_instdisc.det  # noqa: F401
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/benchmarks/mmdetection/mask-rcnn_r50-c4_ms-1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    head = model.roi_head.shared_head
    assert type(head) is ResLayerExtraNorm
    assert head.norm.num_features == 2048
