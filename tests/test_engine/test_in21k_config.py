"""The ImageNet-21k NPID config (full softmax over a sharded bf16 bank) is
the advertised one; its 2-process training run is in test_dist_train.py."""
import os

from tests.helpers import ROOT

CONFIG = os.path.join(
    ROOT, 'configs/npid/npid_resnet50_64xb64-softmax-sharded-bf16-bank-coslr-'
    '30e_in21k.py')


def test_config_is_the_advertised_one():
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.bank_size == 14197088
    assert cfg.model.bank == dict(type='ShardedMemoryBank', dtype='bfloat16')
    assert cfg.model.head.loss.mode == 'softmax'
    assert cfg.train_dataloader.dataset.type == 'ImageNet21k'
    assert cfg.train_dataloader.batch_size == 64
