# Shared by the two-view Fashion-MNIST recipes that pretrain within 15 minutes
# on a 2-core CPU (MoCo v2, AdCo, Exemplar): the NPID recipe's network, batch
# augmentation and bf16 autocast, with two augmented views per image.
# (configs/npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py
# says why each of these settings was chosen.) A method config adds the
# model's type, head and its own state (queue, negatives) and sets max_epochs
# (epochs that fit the budget: a two-view step costs one more forward pass per
# image than an NPID step).
_base_ = [
    '../datasets/fashion-mnist_bs128_npid.py',
    '../default_runtime.py',
]

model = dict(
    data_preprocessor=dict(
        type='BatchAugmentPreprocessor',
        mean=[72.94],
        std=[90.02],
        augment=dict(
            crop_size=28,
            crop_scale=(0.2, 1.0),
            flip_prob=0.5,
            brightness=0.4,
            contrast=0.4,
            jitter_prob=0.8,
            num_views=2,
            value_max=255.0)),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=32,
        base_channels=32,
        strides=(2, 2, 2, 2),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=256,
        hid_channels=256,
        out_channels=128,
        with_avg_pool=True))

# the pipeline only packs images: BatchAugmentPreprocessor makes both views
train_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# kNN validation of the embeddings against the first 20,000 training images
# (KNNReferenceHook; all 60,000 took ~45 s a validation, a twentieth of the
# budget); the recipes benchmark reads the final backbone out on all 60,000
val_dataloader = dict(batch_size=512)
test_dataloader = val_dataloader

# 8 epochs: a two-view step of 256 images took 0.37-0.39 s (2 threads), about
# 90 s an epoch, so 8 epochs and two kNN validations end near 13 minutes
max_epochs = 8
optim_wrapper = dict(
    type='AutocastOptimWrapper',
    dtype='bfloat16',
    channels_last=True,
    optimizer=dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=4)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = [
    dict(type='KNNReferenceHook', batch_size=512, max_samples=20000),
]
auto_scale_lr = dict(base_batch_size=256)

time_budget_minutes = 13  # max_epochs or 13 min (docs/fast_training.md)
