# SplitMask on all 60k Fashion-MNIST images within 15 minutes on a 2-core CPU,
# read out by fine-tuning on 6,000 labelled images (benchmarks/vit-w64d4-p4_
# splitmask-15min-pre_1xb128-bf16-coslr-30e_fashion-mnist-6k.py). Why these
# settings, measured: docs/splitmask.md ("The 15-minute recipe").
_base_ = [
    '../_base_/models/splitmask_vit-w128d4-p4_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_splitmask.py',
    '../_base_/schedules/splitmask_adamw_coslr_300e.py',
    '../_base_/default_runtime.py',
]

width = 64
model = dict(
    data_preprocessor=dict(
        augment=dict(
            crop_size=28,
            crop_scale=(0.5, 1.0),
            flip_prob=0.5,
            value_max=255.0)),
    backbone=dict(
        arch=dict(
            embed_dims=width,
            num_layers=4,
            num_heads=4,
            feedforward_channels=4 * width),
        img_size=28),
    neck=dict(embed_dims=width, patch_resolution=7, num_layers=1),
    head=dict(loss=dict(embed_dims=width)))

# the pipeline only packs images: SplitMaskPreprocessor augments the batch
train_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# the test split at its native 28 px (tools/test.py: kNN of pooled tokens)
test_dataloader = dict(dataset=dict(pipeline=[dict(type='PackInputs')]))

max_epochs = 6
optim_wrapper = dict(
    type='AutocastOptimWrapper',
    dtype='bfloat16',
    attention_backend='math',
    optimizer=dict(lr=1.5e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = []
auto_scale_lr = dict(base_batch_size=256)

time_budget_minutes = 13  # max_epochs or 13 min (docs/fast_training.md)
