# Rotation prediction (Gidaris et al., ICLR 2018) on all 60k Fashion-MNIST
# images within 15 minutes on a 2-core CPU, the baseline of the recipes
# benchmark: all four rotations of every image in a batch, a 4-way classifier.
# Measurements: docs/pretext.md ("Measurements behind the recipe: rotation").
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='RotationPred',
    head=dict(loss=dict(in_channels=256, num_classes=4)))

max_epochs = 3
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
