# Supervised cross-entropy pretraining baseline for the Exemplar benchmark:
# mmpretrain's ImageClassifier on the same backbone as the Exemplar / MoCo v2
# Fashion-MNIST configs (ResNet-18, CIFAR stem, width 16, 1x28x28), the same
# augmentation as one of their views (random resized crop 0.2-1, flip), batch
# 128, SGD lr 0.03 cosine, wd 5e-4, 10 epochs. `python tools/test.py` gives
# the classifier's test accuracy; `tools/knn_eval.py --feature backbone`
# evaluates its backbone as the self-supervised models'.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs128_npid.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[72.94],
        std=[90.02],
        num_classes=10),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.2, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
test_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))

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
