# AdCo with multi-crop (official README: linear top-1 73.2 at 200 epochs):
# one 224-px key crop (scale 0.2-1) and five query crops of 224/192/160/128/96
# px (scales 0.2-1, 0.172-0.86, 0.143-0.715, 0.114-0.571, 0.086-0.429), the
# query crops' losses summed, as in the official code.
_base_ = './adco_resnet50_8xb32-coslr-200e_in1k.py'

model = dict(multi_crop=True)

crop_sizes = [224, 192, 160, 128, 96]
crop_ranges = [(0.2, 1.0), (0.172, 0.86), (0.143, 0.715), (0.114, 0.571),
               (0.086, 0.429)]
colour_pipeline = [
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.4,
                hue=0.1)
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
    dict(type='RandomFlip', prob=0.5),
]
key_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.),
        backend='pillow'),
] + colour_pipeline
query_pipelines = [[
    dict(
        type='RandomResizedCrop',
        scale=size,
        crop_ratio_range=ratio_range,
        backend='pillow'),
] + colour_pipeline for size, ratio_range in zip(crop_sizes, crop_ranges)]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiView',
        num_views=[1] * (1 + len(crop_sizes)),
        transforms=[key_pipeline] + query_pipelines),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
