"""The 15-minute recipes learn: MoCo v2, AdCo, Exemplar (two views),
SplitMask and the pretext tasks (rotation, relative location, jigsaw, masked
intensity), built from their shipped
configs (network, batch augmentation, temperatures, queue / negatives,
optimizer, warm-up; float32 on every host) through mmengine's Runner,
trained for 5 epochs (SplitMask: 10, jigsaw: 8) on 4,000 real Fashion-MNIST
images (batch 64, about 300 / 620 steps), end above the same network at its
random initialisation.
Read-out: weighted kNN (k = 200, tau = 0.07) of the pooled backbone (SplitMask:
the mean of its patch tokens) on 1,000 test images against the 4,000 training
images. About a minute per two-view recipe on one thread, 1.5-3 minutes per
pretext task (rotation: 4 passes a step; relative location: 9 patches;
jigsaw: 4 tiles)."""
import copy
import os

import pytest
import torch

from mm_instdisc.benchmarks.recipes import METHODS
from tests.helpers import ROOT

DATA = os.path.join(ROOT, 'data/fashion_mnist')
pytestmark = [
    pytest.mark.learning,
    pytest.mark.skipif(
        not os.path.exists(os.path.join(DATA, 'train-images-idx3-ubyte.gz')),
        reason='Fashion-MNIST not prepared (bash tools/setup.sh links it)'),
]
RECIPES = {
    'mocov2': 'configs/mocov2/mocov2_resnet18-w32s2_1xb256-bf16-cos-15min_'
              'fashion-mnist.py',
    'adco': 'configs/adco/adco_resnet18-w32s2_1xb256-bf16-cos-15min_'
            'fashion-mnist.py',
    'exemplar': 'configs/exemplar/exemplar-v2_resnet18-w32s2_1xb256-bf16-cos-'
                '15min_fashion-mnist.py',
    'splitmask': 'configs/splitmask/splitmask_vit-w64d4-p4_1xb256-bf16-cos-'
                 '15min_fashion-mnist.py',
    **{name: f'configs/pretext/{name}_resnet18-w32s2_1xb256-bf16-cos-15min_'
              'fashion-mnist.py'
       for name in ('rotation-pred', 'relative-loc', 'jigsaw',
                    'masked-intensity')},
}
# read-out features: the pooled backbone, or SplitMask's mean patch token
FEATURE = {'splitmask': 'embed'}
# SplitMask's pooled tokens first fall below random init (kNN k=200 30.3
# after one epoch of a 10-epoch run of this test, random init 42.7) and pass
# it after ~5 epochs (49.1 after 7, 51.5 after 9; an 8-epoch run ends at
# 44.9): it trains 10 epochs here
# Jigsaw's 2x2 puzzles end at 61.0 after 5 epochs in float32 (random init
# 60.9; 63.7 in bf16) and at 64.3 after 8: it trains 8
EPOCHS_OF = {'splitmask': 10, 'jigsaw': 8}
# the pretext tasks keep their recipe's warm-up share (200 of its epochs of
# 234 steps)
WARMUP_SHARE = {'splitmask': 200 / 1404, **{
    name: 200 / (METHODS[method][1] * 234)
    for name, method in (('rotation-pred', 'rotation'),
                         ('relative-loc', 'relloc'), ('jigsaw', 'jigsaw'),
                         ('masked-intensity', 'maskint'))}}
N_TRAIN, N_TEST, EPOCHS = 4000, 1000, 5
# measured not to learn at the shipped settings: strict, so a recipe that
# starts to learn fails here until it is moved out. Masked intensity's first
# recipe (a 7x7 target grid) ended at 57.1 vs 60.9 here; its 2x2 grid learns
MAY_NOT_LEARN = {}


def knn_top1(model, loaders, feature='backbone'):
    from mm_instdisc.evaluation import extract_features, knn_evaluate
    tr = extract_features(model, loaders[0], feature)
    te = extract_features(model, loaders[1], feature)
    return knn_evaluate(tr[0], tr[1], te[0], te[1], ks=(200, ),
                        temperature=0.07)[200][1]


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.xfail(
        strict=True, reason=MAY_NOT_LEARN[n])) if n in MAY_NOT_LEARN else n
    for n in sorted(RECIPES)])
def test_recipe_ends_above_random_init(tmp_path, name, monkeypatch):
    from mmengine.config import Config
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    from mm_instdisc.evaluation import build_knn_dataloaders
    torch.set_num_threads(1)
    # float32 on every host, as on a CPU without bf16 kernels (where the
    # configs' bf16 autocast falls back to it): bf16 rounding changes the
    # trajectories enough to move a short run by points
    monkeypatch.setattr('mm_instdisc.engine.optimizers.cpu_amp_optim_wrapper.'
                        'cpu_bf16_supported', lambda: False)
    cfg = Config.fromfile(os.path.join(ROOT, RECIPES[name]))
    cfg.work_dir = str(tmp_path)
    cfg.log_level = 'WARNING'
    cfg.train_dataloader.dataset.data_root = DATA
    cfg.train_dataloader.dataset.indices = N_TRAIN
    cfg.train_dataloader.batch_size = 64
    epochs = EPOCHS_OF.get(name, EPOCHS)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.param_scheduler[-1].update(T_max=epochs, end=epochs)
    # the warm-up keeps its share of the run (200 of SplitMask's 1,404
    # steps; the two-view recipes' 200 steps are a few per cent of theirs)
    if name in WARMUP_SHARE:
        steps = epochs * N_TRAIN // 64
        cfg.param_scheduler[0].end = int(WARMUP_SHARE[name] * steps)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'KNNReferenceHook']
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs)
    cfg.randomness = dict(seed=0)
    data_cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/_base_/datasets/fashion-mnist_bs128_npid.py'))
    for loader, n in ((data_cfg.train_dataloader, N_TRAIN),
                      (data_cfg.test_dataloader, N_TEST)):
        loader.dataset.data_root = DATA
        loader.dataset.indices = n
    runner = Runner.from_cfg(cfg)  # also sets the mmpretrain scope
    loaders = build_knn_dataloaders(copy.deepcopy(data_cfg), 500)
    feature = FEATURE.get(name, 'backbone')
    random_init = knn_top1(runner.model, loaders, feature)
    runner.train()
    trained = knn_top1(runner.model, loaders, feature)
    print(f'{name}: kNN k=200 {trained:.2f} vs random init {random_init:.2f}')
    assert trained > random_init + 1.0, (trained, random_init)
