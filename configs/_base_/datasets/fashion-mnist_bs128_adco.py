# Fashion-MNIST with two views per image for AdCo (MultiView). Colour jitter
# is left out: mmpretrain's ColorJitter does not take single-channel images.
_base_ = './fashion-mnist_bs128_npid.py'

view_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.2, 1.)),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# AdCo has no memory bank to vote with during training: evaluate checkpoints
# with `python tools/knn_eval.py CONFIG CHECKPOINT` (uses test_dataloader).
val_dataloader = None
val_evaluator = None
