# The pretext-task baselines on ImageNet: ResNet-50 (shared by every image,
# patch or tile), global average pooling, and a LossHead whose loss is the
# task's classifier (PretextClsLoss); the algorithm type and the classifier's
# size come from the task config.
model = dict(
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LossHead', loss=dict(type='PretextClsLoss')))
