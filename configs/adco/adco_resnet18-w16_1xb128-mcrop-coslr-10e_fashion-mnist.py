# CPU-sized AdCo on Fashion-MNIST with multi-crop: one 28-px key crop and
# query crops of 28/24/20/16 px (scales shrinking as in the official
# 224/192/160/128/96 recipe); the query crops' losses are summed.
_base_ = './adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'

model = dict(multi_crop=True)

crop_sizes = [28, 24, 20, 16]
crop_ranges = [(0.2, 1.0), (0.172, 0.86), (0.143, 0.715), (0.114, 0.571)]
key_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.2, 1.)),
    dict(type='RandomFlip', prob=0.5),
]
query_pipelines = [[
    dict(type='RandomResizedCrop', scale=size, crop_ratio_range=ratio_range),
    dict(type='RandomFlip', prob=0.5),
] for size, ratio_range in zip(crop_sizes, crop_ranges)]
train_pipeline = [
    dict(
        type='MultiView',
        num_views=[1] * (1 + len(crop_sizes)),
        transforms=[key_pipeline] + query_pipelines),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
