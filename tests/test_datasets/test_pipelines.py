"""The CIFAR-10 and ImageNet NPID pipelines on tiny files in the real formats."""
import os
import pickle

import numpy as np
import pytest

from tests.helpers import ROOT


def build_dataset(cfg_path, loader, data_root):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    import mm_instdisc.datasets  # noqa: F401  (compat patches)
    cfg = Config.fromfile(os.path.join(ROOT, cfg_path))
    init_default_scope('mmpretrain')
    ds_cfg = cfg[loader].dataset
    ds_cfg.data_root = str(data_root)
    return DATASETS.build(ds_cfg)


def write_cifar10(root, n=6):
    """cifar-10-batches-py pickles as the real archive holds them."""
    d = root / 'cifar-10-batches-py'
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
    for name in names:
        entry = dict(data=rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                     labels=list(range(n)))
        with open(d / name, 'wb') as f:
            pickle.dump(entry, f)
    with open(d / 'batches.meta', 'wb') as f:
        pickle.dump(dict(label_names=['airplane', 'automobile', 'bird', 'cat',
                                      'deer', 'dog', 'frog', 'horse', 'ship',
                                      'truck']), f)


def test_cifar10_npid_pipeline(tmp_path, monkeypatch):
    from mmpretrain.datasets import CIFAR10
    write_cifar10(tmp_path / 'c10')
    # mmpretrain verifies the real archive's md5 sums; our files are tiny fakes
    monkeypatch.setattr(CIFAR10, '_check_integrity', lambda self: True)
    cfg = 'configs/npid/npid_resnet18_1xb128-200e_cifar10.py'
    ds = build_dataset(cfg, 'train_dataloader', tmp_path / 'c10')
    assert len(ds) == 30
    for i in range(len(ds)):  # colour jitter with hue 0.4 under numpy 2
        out = ds[i]
        assert tuple(out['inputs'].shape) == (3, 32, 32)
        assert out['data_samples'].sample_idx == i
    test = build_dataset(cfg, 'val_dataloader', tmp_path / 'c10')
    assert len(test) == 6


def test_imagenet_npid_pipeline(tmp_path):
    from PIL import Image
    root = tmp_path / 'imagenet'
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        lines = []
        for c in range(2):
            for j in range(2):
                rel = f'n0{c}/img_{j}.JPEG' if split == 'train' else f'v_{c}{j}.JPEG'
                p = root / split / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (300, 260, 3),
                                             dtype=np.uint8)).save(p)
                lines.append(f'{rel} {c}')
        (root / 'meta').mkdir(exist_ok=True)
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    cfg = 'configs/npid/npid_resnet50_8xb32-steplr-200e_in1k.py'
    ds = build_dataset(cfg, 'train_dataloader', root)
    assert len(ds) == 4
    out = ds[1]
    assert tuple(out['inputs'].shape) == (3, 224, 224)
    assert out['data_samples'].sample_idx == 1
    val = build_dataset(cfg, 'val_dataloader', root)
    assert tuple(val[0]['inputs'].shape) == (3, 224, 224)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('factor', [-0.4, -0.1, 0.25])
def test_adjust_hue_numpy2_safe(backend, factor):
    import mmcv

    import mm_instdisc.datasets  # noqa: F401
    img = np.random.default_rng(1).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    out = mmcv.adjust_hue(img, factor, backend=backend)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert not np.array_equal(out, img)
    # a rotation by f and then by -f is (nearly) the identity
    back = mmcv.adjust_hue(out, -factor, backend=backend)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 8
