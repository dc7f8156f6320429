"""mmdet-side bad input: a composed set that was never written, an empty or
missing pretrained checkpoint."""
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import build_npid, build_splitmask, save_selfsup_checkpoint


def test_missing_composed_set_names_the_tool(tmp_path):
    from mm_instdisc.det import FMNISTCocoDataset
    with pytest.raises(FileNotFoundError,
                       match=r'instances_train\.json does not exist.*'
                       r'mm-instdisc-make-fmnist-coco --out .*make_fmnist_coco'):
        FMNISTCocoDataset(data_root=str(tmp_path),
                          ann_file='annotations/instances_train.json',
                          data_prefix=dict(img='train/'), pipeline=[])


def _runner(checkpoint, load_from=None):
    from mmengine.model import BaseModule

    class Net(BaseModule):
        def __init__(self):
            super().__init__()
            self.backbone = BaseModule(init_cfg=dict(
                type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
            self.backbone.conv = torch.nn.Conv2d(1, 1, 1)

    return SimpleNamespace(model=Net(), _load_from=load_from, _resume=False)


def test_empty_pretrained_checkpoint_names_the_config_key():
    from mm_instdisc.det import PretrainedCheckHook
    with pytest.raises(ValueError, match=r'model\.backbone\.init_cfg\.'
                       r'checkpoint is empty.*--cfg-options model\.backbone'
                       r'\.init_cfg\.checkpoint=PATH'):
        PretrainedCheckHook().before_run(_runner(''))


def test_missing_pretrained_checkpoint_and_load_from(tmp_path):
    from mm_instdisc.det import PretrainedCheckHook
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.init_cfg"
                       r"\.checkpoint='nope\.pth' does not exist"):
        PretrainedCheckHook().before_run(_runner('nope.pth'))
    good = tmp_path / 'w.pth'
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1, 1, 1,
                                                                   1)}}, good)
    PretrainedCheckHook().before_run(_runner(str(good)))  # fine
    with pytest.raises(FileNotFoundError, match="load_from='gone.pth'"):
        PretrainedCheckHook().before_run(_runner(str(good), 'gone.pth'))


def test_detection_configs_check_their_checkpoints():
    import glob
    import os

    from mmengine.config import Config

    from tests.helpers import ROOT
    paths = glob.glob(os.path.join(ROOT, 'configs/**/mask-rcnn*.py'),
                      recursive=True)
    assert len(paths) >= 4
    for p in paths:
        cfg = Config.fromfile(p)
        assert dict(type='PretrainedCheckHook') in cfg.custom_hooks, p
        assert any(i.startswith('mm_instdisc.det')
                   for i in cfg.custom_imports['imports']), p


def _resnet_runner(checkpoint, prefix='backbone.'):
    from mmengine.model import BaseModule
    from mmpretrain.models import ResNet_CIFAR

    class Det(BaseModule):
        def __init__(self):
            super().__init__()
            self.backbone = ResNet_CIFAR(
                depth=18, in_channels=1, stem_channels=8, base_channels=8,
                init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                              prefix=prefix))

    return SimpleNamespace(model=Det(), _load_from=None, _resume=False)


def test_vit_checkpoint_for_a_resnet_detector_is_refused(tmp_path):
    from mm_instdisc.det import PretrainedCheckHook
    vit = save_selfsup_checkpoint(build_splitmask(), tmp_path / 'sm.pth')
    with pytest.raises(ValueError, match=r'architecture mismatch.*holds a '
                       r'vit backbone.*builds a resnet'):
        PretrainedCheckHook().before_run(_resnet_runner(vit))
    npid = save_selfsup_checkpoint(build_npid(), tmp_path / 'npid.pth')
    PretrainedCheckHook().before_run(_resnet_runner(npid))  # same family
    with pytest.raises(ValueError, match=r"no weights under prefix "
                       r"'encoder\.'.*backbone\."):
        PretrainedCheckHook().before_run(_resnet_runner(npid, 'encoder.'))
