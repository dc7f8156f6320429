# Rotation prediction (Gidaris et al., ICLR 2018) on ImageNet-1k with
# ResNet-50: each image in its four rotations in the same batch (16 images =
# 64 rotated ones per GPU, 8 GPUs), a linear 4-way classifier on the pooled
# 2048-d features; random resized crops and flips; mmselfsup 0.x's recipe
# (lr 0.2, 70 epochs, steps at 30 and 50).
_base_ = [
    '../_base_/models/pretext_resnet50.py',
    '../_base_/datasets/imagenet_pretext.py',
    '../_base_/schedules/pretext_sgd_steplr_70e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='RotationPred',
    head=dict(loss=dict(in_channels=2048, num_classes=4)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(base_batch_size=128)
