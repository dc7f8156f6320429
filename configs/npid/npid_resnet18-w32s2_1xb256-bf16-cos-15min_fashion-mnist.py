# NPID on all 60k Fashion-MNIST images within 15 minutes on a 2-core CPU:
# batch augmentation, bf16 autocast, ResNet-18 w32 with a stride-2 first stage,
# the sampled softmax over 8192 shared negatives (tau 0.07). Why each
# setting, measured: benchmarks/reports/npid.md, docs/npid.md and
# docs/fast_training.md.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs128_npid.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='NPID',
    bank_size=60000,
    feat_dim=128,
    bank_momentum=0.5,
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
        type='LinearNeck',
        in_channels=256,
        out_channels=128,
        gap_dim=2,
        norm_cfg=None),
    head=dict(
        type='LossHead',
        loss=dict(
            type='NPIDLoss',
            mode='sampled_softmax',
            num_negatives=8192,
            shared_negatives=True,
            temperature=0.07)))

# the pipeline only packs images: BatchAugmentPreprocessor augments the batch
train_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=512)
test_dataloader = val_dataloader

max_epochs = 14
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
                 val_interval=7)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = [
    dict(type='MemoryBankHook', init='forward', log_interval=50),
    # kNN validation against the memory bank
    dict(type='KNNReferenceHook'),
]
auto_scale_lr = dict(base_batch_size=256)

time_budget_minutes = 13  # max_epochs or 13 min (docs/fast_training.md)
