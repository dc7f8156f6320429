"""The ImageNet-21k NPID config (full softmax over a sharded bf16 bank) builds
and trains a few iterations with 2 processes (gloo) on tiny JPEG files in
mmpretrain's ImageNet21k layout (train/<class>/*.JPEG, meta/train.txt); only
the sizes are overridden (bank rows = images, crop, batch, workers)."""
import os

import numpy as np
import torch

from tests.helpers import ROOT, run_dist_train

CONFIG = os.path.join(
    ROOT, 'configs/npid/npid_resnet50_64xb64-softmax-sharded-bf16-bank-coslr-'
    '30e_in21k.py')


def write_in21k(root, classes=('n00004475', 'n00005787', 'n00006024'),
                per_class=4):
    from PIL import Image
    rng = np.random.default_rng(0)
    lines = []
    for label, wnid in enumerate(classes):
        os.makedirs(os.path.join(root, 'train', wnid))
        for i in range(per_class):
            name = f'{wnid}/{wnid}_{i}.JPEG'
            img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(img).save(os.path.join(root, 'train', name),
                                      format='JPEG')
            lines.append(f'{name} {label}')
    os.makedirs(os.path.join(root, 'meta'))
    with open(os.path.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return len(lines)


def test_config_is_the_advertised_one():
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.bank_size == 14197088
    assert cfg.model.bank == dict(type='ShardedMemoryBank', dtype='bfloat16')
    assert cfg.model.head.loss.mode == 'softmax'
    assert cfg.train_dataloader.dataset.type == 'ImageNet21k'
    assert cfg.train_dataloader.batch_size == 64


def test_in21k_config_trains_with_two_processes(tmp_path):
    data = tmp_path / 'imagenet21k'
    n = write_in21k(str(data))
    opts = [f'train_dataloader.dataset.data_root={data}',
            f'model.bank_size={n}',
            'model.backbone.depth=18', 'model.neck.in_channels=512',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_dataloader.dataset.pipeline.1.scale=32',
            'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1']
    run_dist_train(CONFIG, tmp_path / 'work', opts)
    ckpt = torch.load(tmp_path / 'work' / 'epoch_2.pth', weights_only=False)
    state = ckpt['state_dict']
    # rank 0 wrote the whole bank (both shards, bfloat16), unit rows
    assert state['memory_bank.bank'].shape == (n, 128)
    assert state['memory_bank.bank'].dtype == torch.bfloat16
    assert state['memory_bank.shard'].tolist() == [0, n, n, 1]
    norms = state['memory_bank.bank'].float().norm(dim=1)
    assert torch.allclose(norms, torch.ones(n), atol=2e-2)
    log = open(next((tmp_path / 'work').glob('*/*.log'))).read()
    assert 'pos_prob' in log and 'loss' in log
