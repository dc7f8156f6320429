"""Bad input to the checkpoint converter: the wrong architecture, an unknown
prefix, and --list-prefixes to find the right one."""
import torch

from tests.helpers import (FMNIST_LINEAR_CONFIG, build_npid, build_splitmask,
                           run_converter_tool, save_selfsup_checkpoint,
                           tiny_adco_cfg)


def test_backbone_family_and_prefixes():
    from mm_instdisc.utils.selfsup_to_backbone import (backbone_family,
                                                       list_prefixes)
    npid = build_npid().state_dict()
    vit = build_splitmask().state_dict()
    strip = lambda sd: {k[len('backbone.'):]: v for k, v in sd.items()  # noqa
                        if k.startswith('backbone.')}
    assert backbone_family(strip(npid)) == 'resnet'
    assert backbone_family(strip(vit)) == 'vit'
    assert backbone_family({'fc.weight': torch.zeros(1)}) == 'unknown'
    pre = {p: (n, numel) for p, n, numel in list_prefixes(npid)}
    n_backbone = sum(1 for k in npid if k.startswith('backbone.'))
    assert pre['backbone.'][0] == n_backbone
    assert pre['memory_bank.'][0] == sum(
        1 for k in npid if k.startswith('memory_bank.'))
    assert pre['backbone.'][1] == sum(
        v.numel() for k, v in npid.items() if k.startswith('backbone.'))


def test_vit_checkpoint_for_resnet_config_is_refused(tmp_path):
    src = save_selfsup_checkpoint(build_splitmask(), tmp_path / 'sm.pth')
    r = run_converter_tool(src, str(tmp_path / 'out.pth'), '--verify',
                           FMNIST_LINEAR_CONFIG)
    assert r.returncode != 0
    assert 'architecture mismatch' in r.stderr
    assert 'vit backbone' in r.stderr and 'builds a resnet' in r.stderr


def test_unverified_conversion_says_so_and_records_architecture(tmp_path):
    src = save_selfsup_checkpoint(build_splitmask(), tmp_path / 'sm.pth')
    dst = tmp_path / 'out.pth'
    r = run_converter_tool(src, str(dst))
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'architecture: vit' in r.stdout and 'not verified' in r.stdout
    assert torch.load(dst, weights_only=False)['meta']['arch'] == 'vit'


def test_list_prefixes_names_the_key_encoder(tmp_path):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = tiny_adco_cfg(tmp_path, tmp_path / 'w')
    model = MODELS.build(cfg.model)
    src = save_selfsup_checkpoint(model, tmp_path / 'adco.pth')
    r = run_converter_tool(src, '--list-prefixes')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'encoder_k.module.0.' in r.stdout and 'negatives.' in r.stdout
    r = run_converter_tool(src, str(tmp_path / 'k.pth'), '--src-prefix',
                           'encoder_k.module.0.')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'architecture: resnet' in r.stdout
    r = run_converter_tool('--help')
    assert 'encoder_k.module.0.' in r.stdout
    assert 'encoder_k.module.backbone.' not in r.stdout
