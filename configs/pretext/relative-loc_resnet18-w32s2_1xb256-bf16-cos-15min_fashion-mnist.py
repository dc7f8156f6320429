# Relative patch location (Doersch et al., ICCV 2015) on all 60k Fashion-MNIST
# images within 15 minutes on a 2-core CPU: a 3x3 grid of 7x7 patches resized
# to 14 px, the centre paired with its 8 neighbours, an MLP on each pair.
# Measurements: docs/pretext.md, benchmarks/reports/recipes_pretext.md.
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='RelativeLoc',
    patch=7,
    gap=2,
    jitter=1,
    patch_resize=14,
    data_preprocessor=dict(augment=dict(crop_scale=(0.5, 1.0))),
    head=dict(
        loss=dict(in_channels=512, num_classes=8, hidden_channels=512)))

optim_wrapper = dict(optimizer=dict(lr=0.12))

max_epochs = 3
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0012)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
