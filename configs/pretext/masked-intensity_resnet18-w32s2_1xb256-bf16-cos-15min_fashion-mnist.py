# Colorization's recipe for one-channel images (docs/pretext.md) on all 60k
# Fashion-MNIST images within 15 minutes on a 2-core CPU: half of the 7x7 grid
# of 4x4-pixel cells hidden in BEiT-style blocks (at least 4 cells), the
# intensity of every hidden cell classified into 16 bins from the rest of the
# image, with colorization's soft targets (2 nearest bins) and class
# rebalancing (lam 0.5); a 1x1-conv classifier on the backbone's last feature
# map (2x2 at 28 px), logits upsampled to the 7x7 grid. The recipes' network
# (ResNet-18 w32s2, one view, batch augmentation, bf16).
#
# Epochs: 0.37-0.49 s a step through tools/train.py on a quiet machine (2
# threads; the NPID recipe: 0.25 s), 1.5-1.9 minutes an epoch, plus a minute of
# start-up and the final kNN validation: 7 epochs. (A synthetic-batch estimate
# of 0.26 s a step had given 16 epochs, about 28 minutes.)
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='MaskedIntensityPred',
    target_stride=4,
    mask_ratio=0.5,
    min_block_patches=4,
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
