# Jigsaw puzzles (Noroozi and Favaro, ECCV 2016) on all 60k Fashion-MNIST
# images within 15 minutes on a 2-core CPU: a 2x2 grid of 12 px tiles in 14 px
# cells, all 24 permutations, an MLP on the 4 concatenated tile features,
# 4 epochs. Why 2x2, measured: docs/pretext.md and
# benchmarks/reports/recipes_pretext.md.
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='JigsawPuzzle',
    grid=2,
    tile=12,
    num_permutations=24,
    data_preprocessor=dict(augment=dict(crop_scale=(0.5, 1.0))),
    head=dict(
        loss=dict(in_channels=4 * 256, num_classes=24, hidden_channels=512)))

max_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
