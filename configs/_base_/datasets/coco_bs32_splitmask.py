# COCO train2017 images only (no labels, mmpretrain CustomDataset over the
# image folder) for SplitMask pretraining, BEiT-style augmentation at 224 px.
# Expects data/coco/train2017/*.jpg.
dataset_type = 'CustomDataset'
data_root = '{{$MM_INSTDISC_DATA:data}}/coco/'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ColorJitter',
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train2017',
        with_label=False,
        pipeline=train_pipeline))
