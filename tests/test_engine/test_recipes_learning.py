"""The 15-minute recipes learn: MoCo v2, AdCo, Exemplar (two views),
SplitMask and the pretext tasks (rotation, relative location, jigsaw, masked
intensity), built from their shipped configs (network shape, batch
augmentation, temperatures, queue / negatives, optimizer, warm-up + cosine;
float32 on every host) through mmengine's Runner, on 4,000 real
Fashion-MNIST images (batch 64) for a few epochs, end above the same network
at its random initialisation.

What is smaller than the recipe, so that the suite fits its time (15-70 s
a recipe on one thread; the earlier 5-10-epoch runs at full width took
75-240 s):

* the width: the ResNet-18 (CIFAR stem, strides 2, 2, 2, 2) at width 16
  instead of 32, its neck and head inputs halved to match; SplitMask's ViT
  at width 32 (2 heads) instead of 64 (4 layers, 4x4 patches at 28 px as
  shipped). At 3 epochs the narrow networks learned faster per step than the
  shipped width (MoCo v2: kNN k=200 +10.4 over random init at width 16,
  +3.7 at width 32);
* the run: 3 epochs (AdCo, Exemplar and jigsaw 5, SplitMask 10) with the
  recipe's warm-up share of the run and its cosine decay fitted to it.

kNN k=200 above random init at seeds 0 / 1 / 2 (measured 2026-12-07, AVX512
host, one thread a test, two side by side): MoCo v2 +10.4 / +7.5 / +11.1,
AdCo +7.3 / +9.6 / +10.0, Exemplar +8.6 / +7.9 / +6.4, rotation +11.4 /
+10.4 / +12.4, relative location +7.8 / +6.7 / +8.2, jigsaw +2.7 / +7.1 /
+6.6, masked intensity +5.3 / +9.5 / +7.5, SplitMask +12.2 / +2.8 / +7.5.
Shorter runs failed at some seed: AdCo at 3 epochs +0.5 (seed 1), Exemplar
at 3 epochs -0.7 (seed 2), SplitMask at 6 epochs -3.8 (seed 1); jigsaw at 3
epochs passed by 1.6 / 2.5 only. ``MM_INSTDISC_LEARNING_SEED=1 pytest -m
learning`` reruns the tests at another seed.

Read-out: weighted kNN (k = 200, tau = 0.07) of the pooled backbone (SplitMask:
the mean of its patch tokens) on 1,000 test images against the 4,000 training
images."""
import copy
import os

import pytest
import torch

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
N_TRAIN, N_TEST, BATCH, EPOCHS = 4000, 1000, 64, 3
# the runs that needed more than 3 epochs at every seed (see above);
# SplitMask's pooled tokens first fall below random init (34.7 vs 41.9 after
# its first epoch) and pass it after 3-5
EPOCHS_OF = {'adco': 5, 'exemplar': 5, 'jigsaw': 5, 'splitmask': 10}
RESNET_WIDTH, VIT_WIDTH = 16, 32
# the recipes' steps per epoch: 60,000 images in batches of 256
RECIPE_STEPS_PER_EPOCH = 60000 // 256
SEED = int(os.environ.get('MM_INSTDISC_LEARNING_SEED', 0))
# measured not to learn at these settings: strict, so a recipe that starts
# to learn fails here until it is moved out. Masked intensity's first recipe
# (a 7x7 target grid) ended below random init; its 2x2 grid learns
MAY_NOT_LEARN = {}


def narrow(model_cfg, shipped=32, width=RESNET_WIDTH):
    """The recipe's ResNet at ``width``: the stem and base widths, and every
    neck / head input (a multiple of the last stage's 8 x ``shipped``
    channels: one, two or four pooled maps) scaled to match."""
    model_cfg.backbone.update(stem_channels=width, base_channels=width)

    def scale(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ('in_channels', 'hid_channels') and isinstance(
                        value, int) and value % (8 * shipped) == 0:
                    node[key] = value * width // shipped
                else:
                    scale(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                scale(value)

    for part in ('neck', 'head'):
        if part in model_cfg:
            scale(model_cfg[part])


def narrow_vit(model_cfg, width=VIT_WIDTH):
    """SplitMask's ViT, decoder and loss at ``width`` (heads of 16 dims)."""
    heads = width // 16
    model_cfg.backbone.arch.update(embed_dims=width, num_heads=heads,
                                   feedforward_channels=4 * width)
    model_cfg.neck.update(embed_dims=width, num_heads=heads)
    model_cfg.head.loss.embed_dims = width


def knn_top1(model, loaders, feature='backbone'):
    from mm_instdisc.evaluation import extract_features
    from mm_instdisc.modules import knn_evaluate
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
    monkeypatch.setattr('mm_instdisc.engine.optimizers.autocast_optim_wrapper.'
                        'cpu_bf16_supported', lambda: False)
    cfg = Config.fromfile(os.path.join(ROOT, RECIPES[name]))
    if name == 'splitmask':
        narrow_vit(cfg.model)
    else:
        narrow(cfg.model)
    cfg.work_dir = str(tmp_path)
    cfg.log_level = 'WARNING'
    cfg.train_dataloader.dataset.data_root = DATA
    cfg.train_dataloader.dataset.indices = N_TRAIN
    cfg.train_dataloader.batch_size = BATCH
    epochs = EPOCHS_OF.get(name, EPOCHS)
    # the warm-up keeps its share of the recipe's run (200 of its
    # max_epochs x 234 steps), the cosine decays over the shorter run
    warmup_share = cfg.param_scheduler[0].end / (
        cfg.train_cfg.max_epochs * RECIPE_STEPS_PER_EPOCH)
    cfg.param_scheduler[0].end = max(
        1, int(warmup_share * epochs * N_TRAIN // BATCH))
    cfg.param_scheduler[-1].update(T_max=epochs, end=epochs)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'KNNReferenceHook']
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs)
    cfg.randomness = dict(seed=SEED)
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
    print(f'{name} (seed {SEED}, {epochs} epochs): kNN k=200 '
          f'{trained:.2f} vs random init {random_init:.2f}')
    assert trained > random_init + 1.0, (trained, random_init)
