# Jigsaw puzzles (Noroozi and Favaro, ECCV 2016) on all 60k Fashion-MNIST images
# within 15 minutes on a 2-core CPU: 3x3 cells of 9 px, a random 7x7 tile in
# each (so 0-4 px between neighbouring tiles; the paper: 64 px tiles in 75 px
# cells), each tile standardised on its own, resized to 14 px for the network,
# shuffled by one of 100 permutations of maximal Hamming distance (the paper:
# 1000 for ImageNet; 100 keeps the 60k-image task learnable in a few epochs);
# the 9 pooled tile features concatenated in puzzle order (9 x 256) into an
# MLP (2304 -> 512 -> 100), the paper's fc7/fc8 on the tiles' fc6.
#
# Epochs: 1.19-1.22 s a step through tools/train.py on a quiet machine (2
# threads; the NPID recipe: 0.25 s), 4.7 minutes an epoch, plus a minute of
# start-up and the final kNN validation: 2 epochs. (A synthetic-batch estimate
# of 0.90 s a step had given 4 epochs, about 19 minutes.)
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_pretext.py'

model = dict(
    type='JigsawPuzzle',
    tile=7,
    num_permutations=100,
    tile_resize=14,
    data_preprocessor=dict(augment=dict(crop_scale=(0.5, 1.0))),
    head=dict(
        loss=dict(in_channels=9 * 256, num_classes=100, hidden_channels=512)))

max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
