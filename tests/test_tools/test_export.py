"""``mm-instdisc-export CKPT --to FORMAT OUT``: our pretraining checkpoints
(ResNets of other depths, widths, stems and channels; SplitMask's ViT)
exported for mmpretrain, mmdet, torchvision, timm and detectron2 load
into each library's own model (strict, less the classifier) and give the
same features as our backbone; detectron2's names and shapes match a table
written here; bad input is refused with what would work."""
import os
import pickle
import sys

import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet, conv1x1

from mm_instdisc.utils.export import (check_export, describe_backbone,
                                      export_backbone, format_report)
from mm_instdisc.utils.selfsup_to_backbone import convert_selfsup_checkpoint
from tests.helpers import (ROOT, TINY_VIT_ARCH, build_npid, build_splitmask,
                           save_selfsup_checkpoint)

TOL = dict(rtol=1e-4, atol=1e-5)
FC = ['fc.bias', 'fc.weight']


def _ckpt(tmp_path_factory, name, build):
    """(the model's backbone in eval mode, its saved checkpoint)."""
    model = build()
    path = save_selfsup_checkpoint(
        model, tmp_path_factory.mktemp(name) / f'{name}.pth')
    model.backbone.eval()
    return model.backbone, path


@pytest.fixture(scope='module')
def resnet18(tmp_path_factory):
    """ImageNet-style ResNet-18: 3 channels, 7x7 stem, width 64."""
    return _ckpt(tmp_path_factory, 'r18', lambda: build_npid(
        type='ResNet', in_channels=3, stem_channels=64, base_channels=64))


@pytest.fixture(scope='module')
def resnet_cifar(tmp_path_factory):
    """Our CPU NPID backbone: ResNet_CIFAR-18, 1 channel, width 16."""
    return _ckpt(tmp_path_factory, 'cifar', build_npid)


@pytest.fixture(scope='module')
def resnet50(tmp_path_factory):
    return _ckpt(tmp_path_factory, 'r50', lambda: build_npid(
        type='ResNet', depth=50, in_channels=3, stem_channels=16,
        base_channels=16))


@pytest.fixture(scope='module')
def resnet50_v1d(tmp_path_factory):
    return _ckpt(tmp_path_factory, 'v1d', lambda: build_npid(
        type='ResNetV1d', depth=50, in_channels=3, stem_channels=16,
        base_channels=16))


@pytest.fixture(scope='module')
def resnet18_v1c(tmp_path_factory):
    return _ckpt(tmp_path_factory, 'v1c', lambda: build_npid(
        type='ResNetV1c', in_channels=3, stem_channels=32,
        base_channels=32))


@pytest.fixture(scope='module')
def splitmask(tmp_path_factory):
    return _ckpt(tmp_path_factory, 'splitmask', build_splitmask)


def _features(backbone, x):
    with torch.no_grad():
        return backbone(x)[-1]


def _load_less_classifier(model, sd, classifier):
    """strict=True but for the classifier, then eval mode."""
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert sorted(missing) == sorted(classifier) and not unexpected
    return model.eval()


# -- torchvision -------------------------------------------------------------


def test_resnet18_to_torchvision_resnet18(resnet18, tmp_path):
    ours, ckpt = resnet18
    out = str(tmp_path / 'tv.pth')
    report = export_backbone(ckpt, 'torchvision', out, check=True)
    assert report['backbone']['depth'] == 18
    assert report['num_tensors'] == len(ours.state_dict())
    assert report['check']['ok'] and sorted(report['check']['missing']) == FC
    assert report['loads_into'] == 'torchvision.models.resnet18(weights=None)'
    sd = torch.load(out, weights_only=True)  # a plain state dict
    tv = _load_less_classifier(torchvision.models.resnet18(weights=None), sd,
                               FC)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = nn.Sequential(*list(tv.children())[:-2])(x)
    torch.testing.assert_close(_features(ours, x), want, **TOL)


def _torchvision_cifar_resnet18(in_channels, width):
    """torchvision's ResNet-18 put together by hand at another width,
    input channels and the CIFAR stem (3x3 stride-1 conv1, no max-pool):
    its constructor builds 3 channels, a 7x7 stem and widths 64-512 only."""
    tv = ResNet(BasicBlock, [2, 2, 2, 2])
    tv.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
    tv.bn1 = nn.BatchNorm2d(width)
    tv.maxpool = nn.Identity()
    inp = width
    for i in range(4):
        planes, stride = width * 2**i, 1 if i == 0 else 2
        down = None if stride == 1 and inp == planes else nn.Sequential(
            conv1x1(inp, planes, stride), nn.BatchNorm2d(planes))
        setattr(tv, f'layer{i + 1}', nn.Sequential(
            BasicBlock(inp, planes, stride, down), BasicBlock(planes, planes)))
        inp = planes
    tv.fc = nn.Linear(inp, 10)
    return tv


def test_resnet_cifar_width16_to_torchvision_built_to_match(resnet_cifar,
                                                            tmp_path):
    ours, ckpt = resnet_cifar
    out = str(tmp_path / 'tv.pth')
    report = export_backbone(ckpt, 'torchvision', out, check=True)
    info = report['backbone']
    assert (info['type'], info['in_channels'], info['stem_channels'],
            info['stem_kernel'], info['base_channels']) == (
                'ResNet_CIFAR', 1, 16, 3, 16)
    assert report['check']['ok']
    assert any('ResNet_CIFAR' in n for n in report['notes'])
    tv = _load_less_classifier(_torchvision_cifar_resnet18(1, 16),
                               torch.load(out, weights_only=True), FC)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        want = nn.Sequential(*list(tv.children())[:-2])(x)
    assert want.shape == (2, 128, 4, 4)
    torch.testing.assert_close(_features(ours, x), want, **TOL)


def test_check_reports_what_does_not_fit(resnet18, tmp_path):
    """The check can fail: the file against a width-32 torchvision net."""
    _, ckpt = resnet18
    out = str(tmp_path / 'tv.pth')
    info = export_backbone(ckpt, 'torchvision', out)['backbone']
    chk = check_export(out, 'torchvision', dict(info, base_channels=32))
    assert not chk['ok']
    assert ('layer1.0.conv1.weight', (64, 64, 3, 3),
            (32, 64, 3, 3)) in chk['mismatched']


# -- timm ----------------------------------------------------------------------


def test_resnet18_to_timm_resnet18(resnet18, tmp_path):
    ours, ckpt = resnet18
    out = str(tmp_path / 'timm.pth')
    assert export_backbone(ckpt, 'timm', out, check=True)['check']['ok']
    t = _load_less_classifier(timm.create_model('resnet18'),
                              torch.load(out, weights_only=True), FC)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(_features(ours, x), t.forward_features(x),
                                   **TOL)


def test_resnet50_v1d_width16_to_timm(resnet50_v1d, tmp_path):
    """Deep stem and average-pool shortcuts: timm's resnet50d layout."""
    from timm.models.resnet import Bottleneck
    from timm.models.resnet import ResNet as TimmResNet
    ours, ckpt = resnet50_v1d
    out = str(tmp_path / 'timm.pth')
    report = export_backbone(ckpt, 'timm', out, check=True)
    assert report['backbone']['type'] == 'ResNetV1d'
    assert report['check']['ok']
    t = TimmResNet(Bottleneck, [3, 4, 6, 3], stem_width=8, stem_type='deep',
                   avg_down=True, channels=(16, 32, 64, 128))
    t = _load_less_classifier(t, torch.load(out, weights_only=True), FC)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(_features(ours, x), t.forward_features(x),
                                   **TOL)


def test_deep_stem_has_no_torchvision_or_detectron2_form(resnet18_v1c,
                                                         tmp_path):
    _, ckpt = resnet18_v1c
    with pytest.raises(ValueError, match=r"deep stem.*It exports to "
                       r"\['mmpretrain', 'mmdet', 'timm'\]"):
        export_backbone(ckpt, 'torchvision', str(tmp_path / 'tv.pth'))
    with pytest.raises(ValueError, match="deep stem.*detectron2's ResNet"):
        export_backbone(ckpt, 'detectron2', str(tmp_path / 'd2.pkl'))


# -- mmpretrain / mmdet --------------------------------------------------------


def test_resnet18_v1c_width32_to_mmpretrain(resnet18_v1c, tmp_path):
    from mmpretrain.models import ResNetV1c
    ours, ckpt = resnet18_v1c
    out = str(tmp_path / 'mm.pth')
    report = export_backbone(ckpt, 'mmpretrain', out, check=True)
    assert report['check']['ok'] and not report['check']['missing']
    saved = torch.load(out, weights_only=True)
    assert saved['meta']['exported_to'] == 'mmpretrain'
    assert saved['meta']['epoch'] == 3 and saved['meta']['arch'] == 'resnet'
    target = ResNetV1c(depth=18, stem_channels=32, base_channels=32)
    target.load_state_dict(saved['state_dict'], strict=True)
    target.eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(_features(ours, x), _features(target, x),
                               **TOL)


def test_plain_resnet50_to_mmdet_is_the_converters_output(resnet50,
                                                          tmp_path):
    from mmdet.models.backbones import ResNet as MMDetResNet
    ours, ckpt = resnet50
    out = str(tmp_path / 'det.pth')
    report = export_backbone(ckpt, 'mmdet', out, check=True)
    assert report['check']['ok']
    state = torch.load(out, weights_only=True)['state_dict']
    converted = convert_selfsup_checkpoint(ckpt, str(tmp_path / 'conv.pth'),
                                           out_prefix='backbone.')
    assert list(state) == list(converted)
    assert all(torch.equal(state[k], converted[k]) for k in state)
    det = MMDetResNet(depth=50, stem_channels=16, base_channels=16)
    det.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()},
                        strict=True)


def test_resnet50_v1d_to_mmdet_in_mmdets_own_names(resnet50_v1d, tmp_path):
    """mmdet's ResNetV1d names its deep stem stem.0/1/3/4/6/7 and pools in
    every average-pool shortcut: loaded through init_cfg with prefix
    'backbone.', the same features."""
    from mmdet.models.backbones import ResNetV1d
    ours, ckpt = resnet50_v1d
    out = str(tmp_path / 'det.pth')
    report = export_backbone(ckpt, 'mmdet', out, check=True)
    assert report['check']['ok']
    state = torch.load(out, weights_only=True)['state_dict']
    assert 'backbone.stem.7.running_var' in state
    assert 'backbone.layer1.0.downsample.2.weight' in state
    det = ResNetV1d(depth=50, stem_channels=16, base_channels=16,
                    out_indices=(3, ), init_cfg=dict(
                        type='Pretrained', checkpoint=out,
                        prefix='backbone.'))
    det.init_weights()
    det.eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(_features(ours, x), _features(det, x), **TOL)


# -- ViT -------------------------------------------------------------------------


def test_splitmask_vit_to_mmpretrain_and_mmdet(splitmask, tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmpretrain.models import VisionTransformer
    ours, ckpt = splitmask
    kwargs = dict(arch=dict(TINY_VIT_ARCH), img_size=32, patch_size=4,
                  in_channels=1, layer_scale_init_value=0.1, out_type='raw')
    out = str(tmp_path / 'mm.pth')
    report = export_backbone(ckpt, 'mmpretrain', out, check=True)
    assert report['check']['ok'] and report['backbone']['img_size'] == 32
    vit = VisionTransformer(**kwargs)
    vit.load_state_dict(torch.load(out, weights_only=True)['state_dict'],
                        strict=True)
    vit.eval()
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(_features(ours, x), _features(vit, x), **TOL)
    # mmdet: as the SplitMask Mask R-CNN config builds its backbone
    det_out = str(tmp_path / 'det.pth')
    assert export_backbone(ckpt, 'mmdet', det_out, check=True)['check']['ok']
    init_default_scope('mmdet')
    det = MODELS.build(dict(type='mmpretrain.VisionTransformer', **kwargs,
                            init_cfg=dict(type='Pretrained',
                                          checkpoint=det_out,
                                          prefix='backbone.')))
    det.init_weights()
    assert all(torch.equal(v, ours.state_dict()[k])
               for k, v in det.state_dict().items())


def test_splitmask_vit_to_timm_vit(splitmask, tmp_path):
    ours, ckpt = splitmask
    out = str(tmp_path / 'timm.pth')
    report = export_backbone(ckpt, 'timm', out, check=True)
    assert report['check']['ok']
    assert sorted(report['check']['missing']) == ['head.bias', 'head.weight']
    dims = TINY_VIT_ARCH['embed_dims']
    t = timm.create_model(
        'vit_tiny_patch16_224', img_size=32, patch_size=4, in_chans=1,
        embed_dim=dims, depth=TINY_VIT_ARCH['num_layers'],
        num_heads=TINY_VIT_ARCH['num_heads'],
        mlp_ratio=TINY_VIT_ARCH['feedforward_channels'] / dims,
        init_values=0.1)
    t = _load_less_classifier(t, torch.load(out, weights_only=True),
                              ['head.bias', 'head.weight'])
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(_features(ours, x), t.forward_features(x),
                                   **TOL)


def test_vit_without_layer_scale_to_torchvision(tmp_path):
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    arch = dict(embed_dims=32, num_layers=2, num_heads=2,
                feedforward_channels=64)
    ours = VisionTransformer(arch=arch, img_size=32, patch_size=8,
                             out_type='raw')
    with torch.no_grad():  # pos_embed and cls_token start at zero
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours.eval()
    ckpt = str(tmp_path / 'vit.pth')
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in ours.state_dict().items()}}, ckpt)
    out = str(tmp_path / 'tv.pth')
    report = export_backbone(ckpt, 'torchvision', out, check=True,
                             num_heads=2)
    assert report['check']['ok'] and 'num_heads=2' in report['loads_into']
    tv = _load_less_classifier(
        torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2,
            hidden_dim=32, mlp_dim=64), torch.load(out, weights_only=True),
        ['heads.head.bias', 'heads.head.weight'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = tv._process_input(x)
        tokens = torch.cat([tv.class_token.expand(2, -1, -1), tokens], 1)
        torch.testing.assert_close(_features(ours, x), tv.encoder(tokens),
                                   **TOL)


def test_splitmask_vit_has_no_torchvision_or_detectron2_form(splitmask,
                                                             tmp_path):
    _, ckpt = splitmask
    with pytest.raises(ValueError, match=r"gamma1.*It exports to "
                       r"\['mmpretrain', 'mmdet', 'timm'\]"):
        export_backbone(ckpt, 'torchvision', str(tmp_path / 'tv.pth'))
    with pytest.raises(ValueError, match=r"ResNets only.*ViT.*"
                       r"\('mmpretrain', 'mmdet', 'timm', 'torchvision'\)"):
        export_backbone(ckpt, 'detectron2', str(tmp_path / 'd2.pkl'))
    assert not os.path.exists(tmp_path / 'd2.pkl')


def test_vit_heads_come_from_the_checkpoints_config(splitmask, tmp_path):
    from mmengine.config import Config
    _, ckpt = splitmask
    raw = torch.load(ckpt, weights_only=False)
    path = str(tmp_path / 'with_cfg.pth')
    # deit-tiny's 3 heads do not divide these weights' width 32: a config
    # of another backbone, ignored
    for arch, heads, source in ((dict(TINY_VIT_ARCH), 2, 'config'),
                                ('deit-tiny', None, None)):
        raw['meta']['cfg'] = Config(dict(model=dict(backbone=dict(
            type='SplitMaskViT', arch=arch)))).pretty_text
        torch.save(raw, path)
        report = export_backbone(path, 'timm', str(tmp_path / 't.pth'))
        info = report['backbone']
        assert (info['type'], info['num_heads'], info['num_heads_from']) == (
            'SplitMaskViT', heads, source)
        assert f"num_heads={heads or 'N'}" in report['loads_into']
    assert 'num_heads: not stored in the weights' in format_report(report)
    with pytest.raises(ValueError, match='Illegal num_heads 3: .* width 32'):
        export_backbone(path, 'timm', str(tmp_path / 't.pth'), num_heads=3)


# -- detectron2 --------------------------------------------------------------


def detectron2_table(bottleneck, in_channels, stem, base, blocks):
    """{name: shape} of detectron2's ResNet (BasicStem, res2-res5 of
    BasicBlock / BottleneckBlock, a shortcut where the channels change),
    written from detectron2's build_resnet_backbone."""
    table = {'stem.conv1.weight': (stem, in_channels, 7, 7)}

    def norm(name, c):
        for p in ('weight', 'bias', 'running_mean', 'running_var'):
            table[f'{name}.norm.{p}'] = (c, )

    norm('stem.conv1', stem)
    inp = stem
    for s, n in enumerate(blocks):
        mid = base * 2**s
        out = mid * (4 if bottleneck else 1)
        for b in range(n):
            p = f'res{s + 2}.{b}.'
            cin = inp if b == 0 else out
            convs = ([(cin, mid, 1), (mid, mid, 3), (mid, out, 1)]
                     if bottleneck else [(cin, mid, 3), (mid, out, 3)])
            for i, (ci, co, k) in enumerate(convs, 1):
                table[f'{p}conv{i}.weight'] = (co, ci, k, k)
                norm(f'{p}conv{i}', co)
            if cin != out:
                table[p + 'shortcut.weight'] = (out, cin, 1, 1)
                norm(p + 'shortcut', out)
        inp = out
    return table


def _detectron2(ckpt, tmp_path):
    out = str(tmp_path / 'd2.pkl')
    report = export_backbone(ckpt, 'detectron2', out, check=True)
    with open(out, 'rb') as f:
        saved = pickle.load(f)
    assert saved['__author__'] == 'mm_instdisc'
    assert saved['matching_heuristics'] is True
    assert 'skipped' in report['check']
    return report, saved['model']


def test_detectron2_resnet18(resnet18, tmp_path):
    ours, ckpt = resnet18
    report, model = _detectron2(ckpt, tmp_path)
    want = detectron2_table(False, 3, 64, 64, (2, 2, 2, 2))
    assert {k: v.shape for k, v in model.items()} == want
    assert report['num_tensors'] == len(want)
    for name, shape in (('stem.conv1.weight', (64, 3, 7, 7)),
                        ('res2.0.conv1.weight', (64, 64, 3, 3)),
                        ('res3.0.shortcut.weight', (128, 64, 1, 1)),
                        ('res3.0.shortcut.norm.running_mean', (128, )),
                        ('res5.1.conv2.norm.running_var', (512, ))):
        assert model[name].shape == shape, name
    assert 'res2.0.shortcut.weight' not in model  # 64 -> 64: identity
    sd = ours.state_dict()
    for d2, mm in (('stem.conv1.norm.weight', 'bn1.weight'),
                   ('res5.1.conv2.norm.running_var',
                    'layer4.1.bn2.running_var'),
                   ('res3.0.shortcut.norm.bias',
                    'layer2.0.downsample.1.bias')):
        assert torch.equal(torch.from_numpy(model[d2]), sd[mm]), d2
    assert 'STRIDE_IN_1X1 False' in report['loads_into']


def test_detectron2_resnet50(resnet50, tmp_path):
    ours, ckpt = resnet50
    report, model = _detectron2(ckpt, tmp_path)
    want = detectron2_table(True, 3, 16, 16, (3, 4, 6, 3))
    assert {k: v.shape for k, v in model.items()} == want
    assert model['res2.0.shortcut.weight'].shape == (64, 16, 1, 1)
    assert model['res5.2.conv3.weight'].shape == (512, 128, 1, 1)
    torch.testing.assert_close(
        torch.from_numpy(model['res4.5.conv3.weight']),
        ours.state_dict()['layer3.5.conv3.weight'], rtol=0, atol=0)
    assert 'RES2_OUT_CHANNELS 64' in report['loads_into']


# -- bad input, CLI ------------------------------------------------------------


def test_bad_input_is_refused_with_what_would_work(resnet18, tmp_path):
    _, ckpt = resnet18
    no_backbone = str(tmp_path / 'heads.pth')
    torch.save({'state_dict': {'neck.fc.weight': torch.zeros(2, 2),
                               'head.w': torch.zeros(2)}}, no_backbone)
    with pytest.raises(ValueError, match=r"No backbone\.\* keys.*\['head', "
                       r"'neck'\].*--list-prefixes"):
        export_backbone(no_backbone, 'mmpretrain', str(tmp_path / 'o.pth'))
    with pytest.raises(ValueError, match=r"Illegal --to 'keras'.*'timm'"):
        export_backbone(ckpt, 'keras', str(tmp_path / 'o.pth'))
    with pytest.raises(ValueError, match='Refusing to overwrite'):
        export_backbone(ckpt, 'timm', ckpt)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        export_backbone(str(tmp_path / 'missing.pth'), 'timm',
                        str(tmp_path / 'o.pth'))


def test_src_prefix_and_bare_backbone_files(resnet18, tmp_path):
    ours, ckpt = resnet18
    key_enc = str(tmp_path / 'k.pth')
    torch.save({'state_dict': {'encoder_k.' + k: v
                               for k, v in ours.state_dict().items()}},
               key_enc)
    report = export_backbone(key_enc, 'timm', str(tmp_path / 'a.pth'),
                             src_prefix='encoder_k.', check=True)
    assert report['check']['ok']
    bare = str(tmp_path / 'bare.pth')  # e.g. the converter's output
    torch.save({'state_dict': ours.state_dict()}, bare)
    report = export_backbone(bare, 'torchvision', str(tmp_path / 'b.pth'),
                             check=True)
    assert report['check']['ok'] and report['backbone']['depth'] == 18


def test_check_is_skipped_when_the_library_is_missing(resnet18, tmp_path,
                                                      monkeypatch):
    _, ckpt = resnet18
    for name in [m for m in sys.modules if m == 'timm' or
                 m.startswith('timm.')]:
        monkeypatch.setitem(sys.modules, name, None)
    report = export_backbone(ckpt, 'timm', str(tmp_path / 't.pth'),
                             check=True)
    assert report['check']['skipped'].startswith('timm is not installed')
    assert 'check skipped: timm is not installed' in format_report(report)


def test_describe_refuses_weights_of_no_backbone():
    with pytest.raises(ValueError, match=r"No ResNet or ViT.*\['neck'\]"):
        describe_backbone({'neck.fc.weight': torch.zeros(2, 2)})


def _cli(*argv):
    from mm_instdisc import cli
    return cli.export_cli(list(map(str, argv)))


def test_cli_prints_the_report_and_clear_errors(resnet_cifar, tmp_path,
                                                capsys):
    _, ckpt = resnet_cifar
    out = tmp_path / 'sub' / 'tv.pth'
    report = _cli(ckpt, '--to', 'torchvision', out, '--check')
    assert os.path.isfile(out) and report['check']['ok']
    text = capsys.readouterr().out
    assert 'ResNet_CIFAR depth 18' in text and 'base width 16' in text
    assert f"wrote {report['num_tensors']} tensors" in text
    assert "check (torchvision.models.resnet.ResNet): OK; 2 missing" in text
    with pytest.raises(SystemExit) as e:
        _cli(ckpt, '--to', 'keras', out)
    assert e.value.code == 2  # argparse: invalid choice
    assert "invalid choice: 'keras'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match='^mm-instdisc-export: error: '
                       'Checkpoint not found.*nope.pth'):
        _cli(tmp_path / 'nope.pth', '--to', 'timm', out)


def test_console_script_is_declared_and_exits_0(resnet18, tmp_path,
                                                monkeypatch, capsys):
    """setup.py declares it; the entry point returns None (the wrapper's
    ``sys.exit(export())`` would print a returned report and exit 1)."""
    from mm_instdisc import cli
    with open(os.path.join(ROOT, 'setup.py')) as f:
        assert "'mm-instdisc-export=mm_instdisc.cli:export'" in f.read()
    out = tmp_path / 'mm.pth'
    monkeypatch.setattr(sys, 'argv', ['mm-instdisc-export', resnet18[1],
                                      '--to', 'mmpretrain', str(out)])
    assert cli.export() is None
    assert os.path.isfile(out) and 'mmpretrain format' in (
        capsys.readouterr().out)
