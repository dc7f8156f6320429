# Masked intensity (colorization's recipe for one-channel images) on all 60k
# Fashion-MNIST images within 15 minutes on a 2-core CPU: two of four 14x14
# quadrants hidden, each one's mean intensity classified into 16 bins.
# Measurements: docs/pretext.md ("Masked intensity on a 2x2 grid").
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='MaskedIntensityPred',
    target_stride=14,
    mask_ratio=0.5,
    min_block_patches=1,
    data_preprocessor=dict(augment=dict(crop_scale=(0.5, 1.0))),
    head=dict(
        loss=dict(
            _delete_=True,
            type='BinnedPixelLoss',
            in_channels=256,
            space='intensity',
            num_bins=16)))

max_epochs = 7
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
