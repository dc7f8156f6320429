# SplitMask on a small image folder (any layout mmpretrain's CustomDataset
# reads, labels ignored): the paper's setting for the smallest data sets,
# 75% uniform masking (A = a uniformly random 25% of the patches, B = the
# other 75%; the A branch inpaints 75%, the B branch 25%) and stronger
# augmentation (wider crop range, grayscale, blur, stronger colour jitter).
# Point data_root at your images: --cfg-options train_dataloader.dataset.
# data_root=path/to/images
_base_ = [
    '../_base_/models/splitmask_vit-small-p16.py',
    '../_base_/schedules/splitmask_adamw_coslr_300e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(mask=dict(mode='uniform', ratio=0.25)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.05, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.8,
                contrast=0.8,
                saturation=0.8,
                hue=0.)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
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
        type='CustomDataset',
        data_root='data/images',
        with_label=False,
        pipeline=train_pipeline))

randomness = dict(seed=0, diff_rank_seed=True)
