"""NPID learns: a short seeded run on real Fashion-MNIST ends above random init.

The model is the registered ``NPID`` built from the registry with the head
settings our configs ship (NCE with Z per sample, the sampled softmax and the
full softmax), trained by a plain loop for 300 steps of 64 on 4,000 real
training images (about 5 epochs) with the bank initialised by a forward pass,
as the shipped configs do. Read-out: weighted kNN (k = 200, tau = 0.07) of the
pooled backbone on 1,000 test images against the 4,000 training images,
compared with the same network at its random initialisation. About 40 s per
mode on one thread.
"""
import os
import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import ROOT

DATA = os.path.join(ROOT, 'data/fashion_mnist')
pytestmark = [
    pytest.mark.learning,
    pytest.mark.skipif(
        not os.path.exists(os.path.join(DATA, 'train-images-idx3-ubyte.gz')),
        reason='Fashion-MNIST not prepared (bash tools/setup.sh links it)'),
]

N_TRAIN, N_TEST, BATCH, STEPS = 4000, 1000, 64, 300


def load(split, n):
    from mm_instdisc.datasets import read_idx
    prefix = 'train' if split == 'train' else 't10k'
    x = read_idx(os.path.join(DATA, f'{prefix}-images-idx3-ubyte.gz'))[:n]
    y = read_idx(os.path.join(DATA, f'{prefix}-labels-idx1-ubyte.gz'))[:n]
    x = torch.from_numpy(np.pad(x, ((0, 0), (2, 2), (2, 2))).copy())[:, None]
    return x, torch.from_numpy(y.astype(np.int64))


def normalise(x):
    return (x.float() - 72.94) / 90.02


def build(head):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')  # an earlier test may have left mmdet's
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='NPID', bank_size=N_TRAIN, feat_dim=64,
        backbone=dict(type='ResNet', depth=18, in_channels=1, stem_channels=16,
                      base_channels=16, zero_init_residual=False),
        neck=dict(type='LinearNeck', in_channels=128, out_channels=64,
                  gap_dim=2, norm_cfg=None),
        head=dict(type='LossHead', loss=dict(
            type='NPIDLoss', num_negatives=1024, temperature=0.07, **head))))


@torch.no_grad()
def knn(model, train, test):
    from mm_instdisc.modules import topk_accuracy, weighted_knn
    model.eval()

    def pooled(x):
        return F.normalize(model.backbone(normalise(x))[-1].mean((2, 3)), dim=1)
    scores = weighted_knn(pooled(test[0]), pooled(train[0]), train[1], 10,
                          ks=(200, ), temperature=0.07)[200]
    return topk_accuracy(scores, test[1], (1, ))[1]


@pytest.fixture(scope='module')
def data():
    return load('train', N_TRAIN), load('test', N_TEST)


@pytest.mark.parametrize('head', [
    dict(mode='nce', z_mode='sample'),
    dict(mode='sampled_softmax'),
    dict(mode='softmax'),
], ids=['nce', 'sampled_softmax', 'softmax'])
def test_npid_ends_above_random_init(data, head):
    from mmpretrain.structures import DataSample
    from torchvision.transforms import v2
    torch.set_num_threads(1)
    train, test = data
    model = build(head)
    random_init = knn(model, train, test)
    with torch.no_grad():  # bank initialised by a forward pass
        model.memory_bank.fill(torch.arange(N_TRAIN),
                               model.embed(normalise(train[0])))
    model.head.loss_module.generator = torch.Generator().manual_seed(0)
    # brightness/contrast jitter matters: without it, 2,000-4,000 images for
    # 300 steps ended within a point of random init (mean intensity is a
    # shortcut to tell instances apart)
    aug = v2.Compose([v2.RandomResizedCrop(32, scale=(0.2, 1.0)),
                      v2.ColorJitter(brightness=0.4, contrast=0.4),
                      v2.RandomHorizontalFlip()])
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for step in range(STEPS):
        if step % (N_TRAIN // BATCH) == 0:
            order = torch.randperm(N_TRAIN, generator=gen)
        start = (step % (N_TRAIN // BATCH)) * BATCH
        idx = order[start:start + BATCH]
        x = normalise(torch.stack([aug(train[0][i]) for i in idx]))
        samples = [DataSample(metainfo=dict(sample_idx=int(i))) for i in idx]
        loss = model.loss([x], samples)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.flush_bank_update()
        losses.append(loss.item())
    trained = knn(model, train, test)
    first, last = statistics.mean(losses[:20]), statistics.mean(losses[-20:])
    print(f'NPID {head}: kNN {trained:.2f} vs random init {random_init:.2f}, '
          f'loss {first:.3f} -> {last:.3f}')
    assert last < first, (first, last)
    assert trained > random_init + 1.0, (trained, random_init)
