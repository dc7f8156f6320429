# Fine-tune the 15-minute SplitMask recipe's ViT (width 64, 4 layers, 4x4
# patches at 28 px) with labels on 6,000 Fashion-MNIST training images (the
# first 6,000 of the training split, 10% of it, ~600 a class) for 30 epochs,
# tested on all 10,000 test images: the read-out of the SplitMask row of
# benchmarks/reports/recipes.md. AdamW lr 1e-3 with layer-wise lr decay 0.75,
# drop path 0.1, label smoothing, bf16 with the math attention backend (see
# the pretraining config). Loads backbone.* of the recipe's final checkpoint;
# set model.backbone.init_cfg=None to fine-tune from random init.
_base_ = ['./vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_fashion-mnist.py']

width = 64
model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=width,
            num_layers=4,
            num_heads=4,
            feedforward_channels=4 * width),
        img_size=28,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/splitmask_vit-w64d4-p4_1xb256-bf16-cos-'
            '15min_fashion-mnist/epoch_6.pth',
            prefix='backbone.')),
    head=dict(in_channels=width))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.6, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    dataset=dict(indices=6000, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 30
optim_wrapper = dict(
    type='AutocastOptimWrapper', dtype='bfloat16', attention_backend='math')
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
