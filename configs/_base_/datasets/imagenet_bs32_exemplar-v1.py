# ImageNet-1k with two MoCo-v1 views per image (Exemplar-v1): random resized
# crop (scale 0.2-1), grayscale 0.2, colour jitter 0.4 (hue 0.4), flip.
# Everything else (ImageNet split='train', batch 32 per GPU, preprocessor) is
# mmpretrain's MoCo v2 dataset config; Exemplar reads the class labels, which
# mmpretrain's ImageNet dataset provides (meta/train.txt or class folders).
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py'

view_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.),
        backend='pillow'),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
    dict(
        type='ColorJitter',
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.4),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
