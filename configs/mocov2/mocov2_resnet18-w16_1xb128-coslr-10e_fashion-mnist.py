# Baseline for the AdCo and Exemplar benchmarks: mmpretrain's own MoCo (v2
# recipe: MLP neck, t 0.2) with exactly the AdCo Fashion-MNIST backbone, neck,
# data pipeline, batch, optimizer and schedule; a queue of 4096 keys where AdCo
# has 4096 learned negatives. Evaluate with tools/knn_eval.py.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs128_adco.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='MoCo',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,  # key encoder m = 0.99 for short runs, as the AdCo config
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[72.94], std=[90.02]),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=128,
        hid_channels=128,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
val_cfg = None
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
# kNN reference for the test loop (tools/test.py): the training images'
# embeddings (no memory bank)
custom_hooks = [dict(type='KNNReferenceHook')]
