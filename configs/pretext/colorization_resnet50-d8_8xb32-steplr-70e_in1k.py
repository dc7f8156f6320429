# Colorization (Zhang et al., ECCV 2016) on ImageNet-1k with a dilated
# ResNet-50 on the lightness channel: L of CIE Lab in, every pixel's ab
# classified into the in-gamut bins of side 10 (261 computed here; the paper
# counts 313), soft targets over the 5 nearest bins (sigma 5), class
# rebalancing (lam 0.5) from a running estimate of the bin frequencies, at a
# quarter of the 224 px input (56x56). Strides (1, 2, 1, 1) with dilations
# (1, 1, 2, 4) keep a 28x28 feature map (output stride 8; the paper's network
# is dilated for the same reason), a 1x1-conv classifier, logits upsampled to
# 56x56. The other pretext configs' schedule (SGD lr 0.2 over 8 GPUs, 70
# epochs, steps at 30 and 50); the paper trained with Adam for 450k
# iterations. For transfer, the backbone takes one channel (L or grey
# images).
_base_ = [
    '../_base_/models/pretext_resnet50.py',
    '../_base_/datasets/imagenet_pretext.py',
    '../_base_/schedules/pretext_sgd_steplr_70e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='Colorization',
    target_stride=4,
    backbone=dict(in_channels=1, strides=(1, 2, 1, 1),
                  dilations=(1, 1, 2, 4)),
    head=dict(loss=dict(_delete_=True, type='BinnedPixelLoss',
                        in_channels=2048, space='ab')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(base_batch_size=256)
