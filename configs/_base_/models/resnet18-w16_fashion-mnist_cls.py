# Classifier on the CPU pretraining backbone (ResNet_CIFAR, depth 18, width
# 16, 1x28x28 input): the same keys as our Fashion-MNIST self-supervised
# checkpoints, loaded with init_cfg prefix 'backbone.'.
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', mean=[72.94], std=[90.02],
        num_classes=10),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False,
        # checkpoint='' is filled in with --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
