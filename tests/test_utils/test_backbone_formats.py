"""Backbone weights between mmpretrain, torchvision and timm: the same
input gives the same features after conversion, round trips are exact, and
loading reports (or refuses) what does not fit."""
import argparse
import doctest

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mm_instdisc.utils import backbone_formats
from mm_instdisc.utils.backbone_formats import (ConvertedPretrainedInit,
                                                detect_arch, detect_format,
                                                from_mmpretrain,
                                                load_backbone_weights,
                                                to_mmpretrain)

TOL = dict(rtol=1e-4, atol=1e-5)


def randomize(model):
    """Random weights and BN statistics (eval-mode BN is then no identity);
    returns the model in eval mode (mmpretrain's ``train()`` returns None)."""
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.normal_(0, 0.1)
            elif name.endswith('running_var'):
                b.uniform_(0.5, 1.5)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    return model


def assert_same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def mm_resnet(cls='ResNet', **kwargs):
    from mmpretrain import models
    torch.manual_seed(1)
    return randomize(getattr(models, cls)(out_indices=(3, ), **kwargs))


# -- slow reference: a ResNet forward written out on torchvision key names --


def _bn(x, sd, name):
    return F.batch_norm(x, sd[name + '.running_mean'],
                        sd[name + '.running_var'], sd[name + '.weight'],
                        sd[name + '.bias'], training=False, eps=1e-5)


def _conv(x, w, stride):
    return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)


def reference_resnet(sd, x, cifar_stem):
    """Features before the pooling of a ResNet given by torchvision names:
    7x7/2 conv1 + max-pool, or a 3x3/1 conv1 without pool (ResNet_CIFAR)."""
    x = F.relu(_bn(_conv(x, sd['conv1.weight'], 1 if cifar_stem else 2), sd,
                   'bn1'))
    if not cifar_stem:
        x = F.max_pool2d(x, 3, 2, 1)
    for stage in range(1, 5):
        block = 0
        while f'layer{stage}.{block}.conv1.weight' in sd:
            p = f'layer{stage}.{block}.'
            stride = 2 if stage > 1 and block == 0 else 1
            bottleneck = p + 'conv3.weight' in sd
            out = F.relu(_bn(_conv(x, sd[p + 'conv1.weight'],
                                   1 if bottleneck else stride), sd,
                             p + 'bn1'))
            out = _bn(_conv(out, sd[p + 'conv2.weight'],
                            stride if bottleneck else 1), sd, p + 'bn2')
            if bottleneck:
                out = _bn(_conv(F.relu(out), sd[p + 'conv3.weight'], 1), sd,
                          p + 'bn3')
            identity = x
            if p + 'downsample.0.weight' in sd:
                identity = _bn(_conv(x, sd[p + 'downsample.0.weight'],
                                     stride), sd, p + 'downsample.1')
            x = F.relu(out + identity)
            block += 1
    return x


def test_docstring_examples():
    result = doctest.testmod(backbone_formats, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- ResNet: torchvision ------------------------------------------------------


@pytest.mark.parametrize('depth', [18, 50])
def test_torchvision_resnet_gives_the_same_features(depth):
    torch.manual_seed(0)
    tv = randomize(getattr(torchvision.models, f'resnet{depth}')(weights=None))
    assert detect_format(tv.state_dict()) == 'torchvision'
    assert detect_arch(tv.state_dict()) == 'resnet'
    ours_sd = to_mmpretrain(tv.state_dict(), 'torchvision', 'resnet')
    assert not any(k.startswith('fc.') for k in ours_sd)
    ours = mm_resnet(depth=depth)
    ours.load_state_dict(ours_sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = nn.Sequential(*list(tv.children())[:-2])(x)
        got = ours(x)[0]
        ref = reference_resnet(tv.state_dict(), x, cifar_stem=False)
    assert got.shape == want.shape == (2, 512 * (4 if depth == 50 else 1),
                                       2, 2)
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(ref, want, **TOL)  # the reference itself


@pytest.mark.parametrize('depth', [18, 50])
def test_resnet_round_trip_through_torchvision_is_exact(depth):
    ours = mm_resnet(depth=depth)
    tv_sd = from_mmpretrain(ours.state_dict(), 'torchvision', 'resnet')
    tv = getattr(torchvision.models, f'resnet{depth}')(weights=None)
    missing, unexpected = tv.load_state_dict(tv_sd, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected
    assert_same_state(to_mmpretrain(tv_sd, 'torchvision', 'resnet'),
                      ours.state_dict())
    # a whole self-supervised state dict: only backbone.* is exported
    whole = {'backbone.' + k: v for k, v in ours.state_dict().items()}
    whole['neck.fc.weight'] = torch.zeros(3, 3)
    assert_same_state(from_mmpretrain(whole, 'torchvision', 'resnet'), tv_sd)


def test_resnet_cifar_width16_one_channel_exports_with_a_note():
    ours = mm_resnet('ResNet_CIFAR', depth=18, in_channels=1,
                     stem_channels=16, base_channels=16)
    with pytest.warns(UserWarning, match=r'ResNet_CIFAR.*nn\.Identity'):
        tv_sd = from_mmpretrain(ours.state_dict(), 'torchvision', 'resnet')
    assert tuple(tv_sd['conv1.weight'].shape) == (16, 1, 3, 3)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        got = ours(x)[0]
    assert got.shape == (2, 128, 4, 4)
    torch.testing.assert_close(reference_resnet(tv_sd, x, cifar_stem=True),
                               got, **TOL)
    assert_same_state(to_mmpretrain(tv_sd, 'torchvision', 'resnet'),
                      ours.state_dict())


def test_resnet_cifar_loads_into_torchvision_with_the_stem_replaced():
    """The docstring's recipe: 3x3 conv1 and no max-pool, then strict."""
    ours = mm_resnet('ResNet_CIFAR', depth=18)
    with pytest.warns(UserWarning, match='3x3'):
        tv_sd = from_mmpretrain(ours.state_dict(), 'torchvision', 'resnet')
    tv = torchvision.models.resnet18(weights=None)
    tv.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    tv.maxpool = nn.Identity()
    tv_sd.update({k: v for k, v in tv.state_dict().items()
                  if k.startswith('fc.')})
    tv.load_state_dict(tv_sd, strict=True)
    tv.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            nn.Sequential(*list(tv.children())[:-2])(x), ours(x)[0], **TOL)


def test_deep_stem_has_no_torchvision_form():
    ours = mm_resnet('ResNetV1c', depth=18)
    with pytest.raises(ValueError, match=r"deep stem.*fmt='timm'"):
        from_mmpretrain(ours.state_dict(), 'torchvision', 'resnet')
    ours_d = mm_resnet('ResNet', depth=50, avg_down=True)
    with pytest.raises(ValueError, match='average-pool shortcuts'):
        from_mmpretrain(ours_d.state_dict(), 'torchvision', 'resnet')
    timm_sd = timm.create_model('resnet18d', pretrained=False).state_dict()
    with pytest.raises(ValueError, match="fmt='timm'"):
        to_mmpretrain(timm_sd, 'torchvision', 'resnet')


# -- ResNet: timm -------------------------------------------------------------


def test_timm_resnet18_gives_the_same_features_and_names_as_torchvision():
    torch.manual_seed(0)
    t = randomize(timm.create_model('resnet18', pretrained=False))
    # the names are torchvision's: the ambiguity detect_format documents
    assert detect_format(t.state_dict()) == 'torchvision'
    ours_sd = to_mmpretrain(t.state_dict(), 'timm', 'resnet')
    assert_same_state(ours_sd,
                      to_mmpretrain(t.state_dict(), 'torchvision', 'resnet'))
    ours = mm_resnet(depth=18)
    ours.load_state_dict(ours_sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], t.forward_features(x), **TOL)


def test_timm_resnet50d_is_resnetv1d():
    """Deep stem (conv1.0/.3/.6 + bn1) and average-pool shortcuts (an
    Identity at index 0 of layer1's, which mmpretrain has not)."""
    torch.manual_seed(0)
    t = randomize(timm.create_model('resnet50d', pretrained=False))
    assert detect_format(t.state_dict()) == 'timm'
    ours_sd = to_mmpretrain(t.state_dict(), 'timm', 'resnet')
    assert 'stem.2.bn.weight' in ours_sd
    assert 'layer1.0.downsample.0.weight' in ours_sd
    ours = mm_resnet('ResNetV1d', depth=50)
    ours.load_state_dict(ours_sd, strict=True)
    assert detect_format(ours.state_dict()) == 'mmpretrain'
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], t.forward_features(x), **TOL)
    back = from_mmpretrain(ours.state_dict(), 'timm', 'resnet')
    missing, unexpected = t.load_state_dict(back, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected
    assert_same_state(to_mmpretrain(back, 'timm', 'resnet'),
                      ours.state_dict())


def test_unmapped_timm_layers_are_named():
    sd = timm.create_model('seresnet18', pretrained=False).state_dict()
    with pytest.raises(ValueError, match=r'no mmpretrain ResNet.*\.se\.'):
        to_mmpretrain(sd, 'timm', 'resnet')
    sd = timm.create_model('vit_tiny_patch16_224', pretrained=False,
                           img_size=32, depth=1, qk_norm=True).state_dict()
    with pytest.raises(ValueError, match='q_norm'):
        to_mmpretrain(sd, 'timm', 'vit')
    with pytest.raises(ValueError, match="Illegal fmt: 'keras'"):
        to_mmpretrain(sd, 'keras', 'vit')
    with pytest.raises(ValueError, match="Illegal arch: 'swin'"):
        from_mmpretrain(sd, 'timm', 'swin')


# -- ViT ----------------------------------------------------------------------


def mm_vit(cls='VisionTransformer', **kwargs):
    from mmpretrain.models import VisionTransformer

    from mm_instdisc.models.selfsup.splitmask import SplitMaskViT
    torch.manual_seed(1)
    kwargs.setdefault('arch', 'deit-tiny')
    kwargs.setdefault('img_size', 32)
    model = dict(VisionTransformer=VisionTransformer,
                 SplitMaskViT=SplitMaskViT)[cls](**kwargs)
    return randomize(model)


def test_timm_vit_tiny_gives_the_same_tokens():
    torch.manual_seed(0)
    t = randomize(timm.create_model('vit_tiny_patch16_224', pretrained=False,
                                    img_size=32))
    assert detect_format(t.state_dict()) == 'timm'
    assert detect_arch(t.state_dict()) == 'vit'
    ours_sd = to_mmpretrain(t.state_dict(), 'timm', 'vit')
    ours = mm_vit(out_type='raw')
    ours.load_state_dict(ours_sd, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = t.forward_features(x)  # (B, 1 + L, C) after the final norm
        got = ours(x)[0]
        assert got.shape == (2, 1 + 4, 192)
        torch.testing.assert_close(got, want, **TOL)
        cls_ours = mm_vit(out_type='cls_token')
        cls_ours.load_state_dict(ours_sd, strict=True)
        torch.testing.assert_close(cls_ours(x)[0], want[:, 0], **TOL)
    back = from_mmpretrain(ours.state_dict(), 'timm', 'vit')
    missing, unexpected = t.load_state_dict(back, strict=False)
    assert sorted(missing) == ['head.bias', 'head.weight'] and not unexpected
    assert_same_state(to_mmpretrain(back, 'timm', 'vit'), ours.state_dict())


def test_timm_vit_avg_pool_layer_scale_pre_norm():
    """fc_norm -> ln2 (out_type='avg_featmap', final_norm=False),
    ls1/ls2 -> gamma1/gamma2, norm_pre -> pre_norm."""
    torch.manual_seed(0)
    t = randomize(timm.create_model(
        'vit_tiny_patch16_224', pretrained=False, img_size=32,
        global_pool='avg', init_values=0.1, pre_norm=True))
    ours = mm_vit(out_type='avg_featmap', final_norm=False,
                  layer_scale_init_value=0.1, pre_norm=True)
    ours.load_state_dict(to_mmpretrain(t.state_dict(), 'timm', 'vit'),
                         strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = t.forward_head(t.forward_features(x), pre_logits=True)
        torch.testing.assert_close(ours(x)[0], want, **TOL)
    assert_same_state(
        to_mmpretrain(from_mmpretrain(ours.state_dict(), 'timm', 'vit'),
                      'timm', 'vit'), ours.state_dict())
    with pytest.raises(ValueError, match='gamma1'):
        from_mmpretrain(ours.state_dict(), 'torchvision', 'vit')


def test_timm_no_embed_class_gets_a_zero_class_position():
    torch.manual_seed(0)
    t = randomize(timm.create_model('vit_tiny_patch16_224', pretrained=False,
                                    img_size=32, no_embed_class=True))
    assert t.pos_embed.shape[1] == 4
    with pytest.warns(UserWarning, match='no_embed_class'):
        ours_sd = to_mmpretrain(t.state_dict(), 'timm', 'vit')
    assert torch.equal(ours_sd['pos_embed'][:, 0],
                       torch.zeros(1, t.pos_embed.shape[2]))
    ours = mm_vit(out_type='raw')
    ours.load_state_dict(ours_sd, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], t.forward_features(x), **TOL)


def test_torchvision_vit_gives_the_same_tokens():
    torch.manual_seed(0)
    arch = dict(embed_dims=32, num_layers=2, num_heads=2,
                feedforward_channels=64)
    tv = randomize(torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=2, num_heads=2,
        hidden_dim=32, mlp_dim=64))
    assert detect_format(tv.state_dict()) == 'torchvision'
    ours = mm_vit(arch=arch, out_type='raw')
    ours.load_state_dict(
        to_mmpretrain(tv.state_dict(), 'torchvision', 'vit'), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = tv._process_input(x)
        tokens = torch.cat([tv.class_token.expand(2, -1, -1), tokens], dim=1)
        torch.testing.assert_close(ours(x)[0], tv.encoder(tokens), **TOL)
    back = from_mmpretrain(ours.state_dict(), 'torchvision', 'vit')
    missing, unexpected = tv.load_state_dict(back, strict=False)
    assert sorted(missing) == ['heads.head.bias', 'heads.head.weight']
    assert not unexpected
    assert_same_state(to_mmpretrain(back, 'torchvision', 'vit'),
                      ours.state_dict())


def test_splitmask_vit_exports_to_timm(tmp_path):
    """Our SplitMask pretraining checkpoint (1-channel, 4x4 patches, layer
    scale) as a timm ViT: the same tokens."""
    from tests.helpers import (TINY_VIT_ARCH, build_splitmask,
                               save_selfsup_checkpoint)
    model = build_splitmask()
    path = save_selfsup_checkpoint(model, tmp_path / 'splitmask.pth')
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    assert detect_format(ckpt) == 'mmpretrain'
    timm_sd = from_mmpretrain(ckpt['state_dict'], 'timm', 'vit')
    t = timm.create_model(
        'vit_tiny_patch16_224', pretrained=False, img_size=32, patch_size=4,
        in_chans=1, embed_dim=TINY_VIT_ARCH['embed_dims'],
        depth=TINY_VIT_ARCH['num_layers'],
        num_heads=TINY_VIT_ARCH['num_heads'],
        mlp_ratio=TINY_VIT_ARCH['feedforward_channels'] /
        TINY_VIT_ARCH['embed_dims'], init_values=0.1)
    missing, unexpected = t.load_state_dict(timm_sd, strict=False)
    assert sorted(missing) == ['head.bias', 'head.weight'] and not unexpected
    t.eval()
    model.backbone.eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.backbone(x)[0],
                                   t.forward_features(x), **TOL)


# -- load_backbone_weights ----------------------------------------------------


def test_load_reports_loaded_missing_and_unexpected(tmp_path):
    torch.manual_seed(0)
    tv_sd = randomize(torchvision.models.resnet18(weights=None)).state_dict()
    torch.save(tv_sd, tmp_path / 'r18.pth')
    ours = mm_resnet(depth=18)
    n = len(ours.state_dict())
    report = load_backbone_weights(ours, str(tmp_path / 'r18.pth'),
                                   logger='silent')
    assert report['format'] == 'torchvision' and report['arch'] == 'resnet'
    assert report['loaded'] == n
    assert report['missing'] == [] and report['unexpected'] == []
    assert sorted(report['dropped']) == ['fc.bias', 'fc.weight']
    assert torch.equal(ours.state_dict()['layer4.1.bn2.weight'],
                       tv_sd['layer4.1.bn2.weight'])
    edited = dict(tv_sd)
    del edited['layer4.1.bn2.weight']
    edited['layer5.0.conv1.weight'] = torch.zeros(1, 1, 1, 1)
    torch.save({'state_dict': edited}, tmp_path / 'edited.pth')
    report = load_backbone_weights(mm_resnet(depth=18),
                                   str(tmp_path / 'edited.pth'), 'timm',
                                   logger='silent')
    assert report['missing'] == ['layer4.1.bn2.weight']
    assert report['unexpected'] == ['layer5.0.conv1.weight']
    assert report['loaded'] == n - 1


def test_load_refuses_a_shape_mismatch_naming_key_and_shapes(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               tmp_path / 'r18.pth')
    cifar = mm_resnet('ResNet_CIFAR', depth=18)
    with pytest.raises(ValueError, match=r'conv1\.weight: \(64, 3, 7, 7\).*'
                       r'\(64, 3, 3, 3\).*ResNet_CIFAR'):
        load_backbone_weights(cifar, str(tmp_path / 'r18.pth'),
                              logger='silent')
    with pytest.raises(ValueError, match=r'layer1\.0\.conv1\.weight.*'
                       r'\(64, 64, 3, 3\).*\(64, 64, 1, 1\)'):
        load_backbone_weights(mm_resnet(depth=50), str(tmp_path / 'r18.pth'),
                              logger='silent')


def test_load_raises_when_nothing_matches(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               tmp_path / 'r18.pth')
    other = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match=r"No weight.*'layer1'.*\['0'\]"):
        load_backbone_weights(other, str(tmp_path / 'r18.pth'),
                              logger='silent')
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'foo.pth')
    with pytest.raises(ValueError, match=r"Unknown backbone.*\['foo'\]"):
        load_backbone_weights(mm_resnet(depth=18), str(tmp_path / 'foo.pth'),
                              logger='silent')
    vit = {'model': timm.create_model('vit_tiny_patch16_224', img_size=32,
                                      depth=1).state_dict()}
    torch.save(vit, tmp_path / 'vit.pth')
    with pytest.raises(ValueError, match='holds vit weights.*is a resnet'):
        load_backbone_weights(mm_resnet(depth=18), str(tmp_path / 'vit.pth'),
                              logger='silent')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_backbone_weights(mm_resnet(depth=18), str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match="Illegal fmt: 'caffe'"):
        load_backbone_weights(mm_resnet(depth=18), str(tmp_path / 'r18.pth'),
                              fmt='caffe')


def test_load_selfsup_checkpoint_prefix_and_ddp_wrappers(tmp_path):
    from tests.helpers import build_npid, save_selfsup_checkpoint
    npid = build_npid()
    path = save_selfsup_checkpoint(npid, tmp_path / 'npid.pth')
    # message hub etc.: read with the weights_only=False fallback
    torch.save(dict(torch.load(path, weights_only=False),
                    extra=argparse.Namespace(a=1)), path)
    fresh = mm_resnet('ResNet_CIFAR', depth=18, in_channels=1,
                      stem_channels=16, base_channels=16)
    report = load_backbone_weights(fresh, path, logger='silent')
    assert report['format'] == 'mmpretrain'
    assert report['loaded'] == len(fresh.state_dict())
    assert not report['missing'] and not report['unexpected']
    assert_same_state(fresh.state_dict(), npid.backbone.state_dict())
    # a momentum encoder under another prefix, saved by DDP as module.*
    enc = {'module.encoder_k.0.' + k: v
           for k, v in npid.backbone.state_dict().items()}
    torch.save({'model': enc}, tmp_path / 'enc.pth')
    fresh = mm_resnet('ResNet_CIFAR', depth=18, in_channels=1,
                      stem_channels=16, base_channels=16)
    report = load_backbone_weights(fresh, str(tmp_path / 'enc.pth'),
                                   prefix='encoder_k.0.', logger='silent')
    assert report['loaded'] == len(fresh.state_dict())
    assert_same_state(fresh.state_dict(), npid.backbone.state_dict())


def test_load_resizes_vit_pos_embed_and_reports_it(tmp_path):
    torch.manual_seed(0)
    t = timm.create_model('vit_tiny_patch16_224', pretrained=False,
                          img_size=32)
    torch.save(t.state_dict(), tmp_path / 'vit.pth')
    ours = mm_vit(out_type='raw', img_size=48)  # 3x3 patches instead of 2x2
    report = load_backbone_weights(ours, str(tmp_path / 'vit.pth'),
                                   logger='silent')
    assert report['resized'] == ['pos_embed']
    assert report['loaded'] == len(ours.state_dict())
    assert sorted(report['dropped']) == ['head.bias', 'head.weight']
    assert ours.pos_embed.shape == (1, 10, 192)
    assert torch.equal(ours.pos_embed[:, 0], t.pos_embed[:, 0].detach())


# -- init_cfg=dict(type='ConvertedPretrained') --------------------------------


def test_registered_where_openmmlab_configs_look():
    from mmdet.registry import WEIGHT_INITIALIZERS as DET
    from mmengine.registry import WEIGHT_INITIALIZERS as ROOT
    from mmpretrain.registry import WEIGHT_INITIALIZERS as PRE
    for registry in (ROOT, PRE, DET):
        assert registry.get('ConvertedPretrained') is ConvertedPretrainedInit
    with pytest.raises(ValueError, match="Illegal format: 'onnx'"):
        ConvertedPretrainedInit('x.pth', format='onnx')


def test_initializer_through_a_classifier_keeps_the_weights(tmp_path):
    """ImageClassifier.init_weights -> ResNet (zero_init_residual=True by
    default, which would zero every bn2 after a plain initializer)."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    tv_sd = randomize(torchvision.models.resnet18(weights=None)).state_dict()
    torch.save(tv_sd, tmp_path / 'resnet18.pth')
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, init_cfg=dict(
            type='ConvertedPretrained',
            checkpoint=str(tmp_path / 'resnet18.pth'))),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512)))
    model.init_weights()
    got = model.backbone.state_dict()
    for k, v in got.items():
        assert torch.equal(v, tv_sd[k]), k
    assert model.backbone.init_cfg['type'] == 'Pretrained'
    assert model.backbone.init_cfg['converted']['format'] == 'torchvision'


def test_initializer_keeps_vit_position_embedding_and_ffn(tmp_path):
    """VisionTransformer re-draws pos_embed and its layers the FFN unless
    the init reads as pretrained; SplitMaskViT also sets a sin-cos
    pos_embed and a new class token."""
    torch.manual_seed(0)
    t = randomize(timm.create_model('vit_tiny_patch16_224', pretrained=False,
                                    img_size=32))
    torch.save(t.state_dict(), tmp_path / 'vit.pth')
    want = to_mmpretrain(t.state_dict(), 'timm', 'vit')
    init_cfg = dict(type='ConvertedPretrained', checkpoint=str(
        tmp_path / 'vit.pth'), format='timm')
    for cls in ('VisionTransformer', 'SplitMaskViT'):
        ours = mm_vit(cls, out_type='raw', init_cfg=dict(init_cfg))
        ours.init_weights()
        assert_same_state(ours.state_dict(), want)


def test_initializer_continues_npid_from_torchvision_names(tmp_path):
    """The NPID config's backbone, continued from a torchvision-named file
    (with a classifier) through model.init_weights()."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from tests.helpers import NPID_MODEL_CONFIG
    src = mm_resnet('ResNet_CIFAR', depth=18, in_channels=1,
                    stem_channels=16, base_channels=16)
    with pytest.warns(UserWarning):
        tv_sd = from_mmpretrain(src.state_dict(), 'torchvision', 'resnet')
    tv_sd.update({'fc.weight': torch.zeros(10, 128), 'fc.bias': torch.zeros(
        10)})
    torch.save(tv_sd, tmp_path / 'given.pth')
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(NPID_MODEL_CONFIG)
    cfg.model.bank_size = 16
    cfg.model.backbone.init_cfg = dict(
        type='ConvertedPretrained', checkpoint=str(tmp_path / 'given.pth'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert_same_state(model.backbone.state_dict(), src.state_dict())
    assert model.backbone.init_cfg['converted']['dropped'] == ['fc.weight',
                                                               'fc.bias']


def test_initializer_must_come_last(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               tmp_path / 'r18.pth')
    from mmpretrain.models import ResNet
    bad = ResNet(depth=18, init_cfg=[
        dict(type='ConvertedPretrained',
             checkpoint=str(tmp_path / 'r18.pth')),
        dict(type='Constant', val=0, layer='Conv2d')])
    with pytest.raises(ValueError, match='must be the last entry'):
        bad.init_weights()
