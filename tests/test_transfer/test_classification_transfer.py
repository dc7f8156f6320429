"""Semi-supervised subsets and the linear-probe / fine-tuning configs."""
import copy
import os
from collections import Counter

import pytest
import torch

from tests.helpers import ROOT

CLS_DIR = os.path.join(ROOT, 'configs/benchmarks/classification')
LINEAR = os.path.join(
    CLS_DIR, 'fashion_mnist/resnet18-w16_1xb128-linear-coslr-10e_'
    'fashion-mnist.py')
SEMI_1PC = os.path.join(
    CLS_DIR, 'fashion_mnist/resnet18-w16_1xb64-ft-coslr-100e_'
    'fashion-mnist-1pc.py')
SEMI_10PC = os.path.join(
    CLS_DIR, 'fashion_mnist/resnet18-w16_1xb128-ft-coslr-30e_'
    'fashion-mnist-10pc.py')


def _subset(root, **kwargs):
    from mmpretrain.registry import DATASETS

    import mm_instdisc.datasets  # noqa: F401
    return DATASETS.build(dict(
        type='ClassBalancedSubset',
        dataset=dict(type='FashionMNISTIDX', data_root=root, split='train',
                     pipeline=[dict(type='PackInputs')]),
        **kwargs))


def test_subset_is_class_balanced_and_reproducible(fmnist_root):
    sub = _subset(fmnist_root, fraction=0.1, seed=0)  # 200 images, 20/class
    assert len(sub) == 20
    counts = Counter(int(y) for y in sub.get_gt_labels())
    assert counts == {c: 2 for c in range(10)}
    assert sub.indices == sorted(set(sub.indices))
    # the same seed gives the same images, another seed others
    assert _subset(fmnist_root, fraction=0.1, seed=0).indices == sub.indices
    assert _subset(fmnist_root, fraction=0.1, seed=1).indices != sub.indices
    # items are the wrapped dataset's
    full = sub.dataset
    i = sub.indices[3]
    assert torch.equal(sub[3]['inputs'], full[i]['inputs'])
    assert int(sub[3]['data_samples'].gt_label) == int(full.get_gt_labels()[i])
    assert sub.metainfo['classes'][0] == 'T-shirt/top'


def test_subset_num_per_class_and_lazy_init(fmnist_root):
    sub = _subset(fmnist_root, num_per_class=5, seed=2, lazy_init=True)
    assert sub.indices == []  # not chosen yet
    assert len(sub) == 50
    assert set(Counter(int(y) for y in sub.get_gt_labels()).values()) == {5}
    big = _subset(fmnist_root, num_per_class=1000)  # capped at class size
    assert len(big) == 200


@pytest.mark.parametrize('kwargs, match', [
    (dict(), 'exactly one of fraction and num_per_class'),
    (dict(fraction=0.1, num_per_class=3), 'exactly one'),
    (dict(fraction=0.), 'Illegal fraction: 0.0'),
    (dict(fraction=1.5), 'Illegal fraction: 1.5'),
    (dict(num_per_class=0), 'Illegal num_per_class: 0'),
])
def test_subset_bad_arguments(fmnist_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _subset(fmnist_root, **kwargs)


def _build(path, ckpt=None):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if ckpt is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg.checkpoint = ckpt
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def _batch(n=8):
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    inputs = [torch.randint(0, 255, (1, 28, 28), dtype=torch.uint8)
              for _ in range(n)]
    samples = [DataSample().set_gt_label(i % 10) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def test_linear_probe_freezes_the_pretrained_backbone(npid_model, npid_ckpt):
    from mmengine.optim import build_optim_wrapper
    cfg, model = _build(LINEAR, npid_ckpt)
    # the pretrained weights are in
    for k, v in npid_model.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    model.train()
    trainable = [n for n, p in model.backbone.named_parameters()
                 if p.requires_grad]
    assert trainable == []
    assert all(p.requires_grad for p in model.head.parameters())
    bns = [m for m in model.backbone.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # statistics frozen too
    before = copy.deepcopy(model.backbone.state_dict())
    head_before = model.head.fc.weight.clone()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    for _ in range(2):
        model.train_step(_batch(), optim)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BN buffers
    assert not torch.equal(model.head.fc.weight, head_before)


@pytest.mark.parametrize('path, fraction', [(SEMI_1PC, 0.01),
                                            (SEMI_10PC, 0.1)])
def test_semi_supervised_configs(path, fraction, npid_ckpt, fmnist_root):
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    cfg, model = _build(path, npid_ckpt)
    assert all(p.requires_grad for p in model.parameters())
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {id(p): g['lr'] for g in optim.param_groups for p in g['params']}
    base_lr = cfg.optim_wrapper.optimizer.lr
    assert lrs[id(model.head.fc.weight)] == pytest.approx(10 * base_lr)
    assert lrs[id(model.backbone.conv1.weight)] == pytest.approx(base_lr)
    # the dataset: a class-balanced share of the train split
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.type == 'ClassBalancedSubset'
    assert ds_cfg.fraction == fraction and ds_cfg.dataset.split == 'train'
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.dataset.dataset.data_root = fmnist_root
    loader_cfg.dataset.fraction = 0.1
    loader_cfg.batch_size = 4
    loader = Runner.build_dataloader(loader_cfg)
    assert len(loader.dataset) == 20
    loss = model.train_step(next(iter(loader)), optim)['loss']
    assert torch.isfinite(loss)
