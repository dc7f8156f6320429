# Semi-supervised fine-tuning on Fashion-MNIST with 1% of the labels: 60
# train images per class (600), the same ones for a given seed
# (ClassBalancedSubset). The whole network trains (backbone lr 0.01, head
# lr x10), 100 epochs of 9 iterations; top-1 on all of t10k.
#   python tools/train.py THIS_CONFIG \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_12.pth
# Another subset: --cfg-options train_dataloader.dataset.seed=1
_base_ = [
    '../../../_base_/models/resnet18-w16_fashion-mnist_cls.py',
    '../../../_base_/datasets/fashion-mnist_bs128_npid.py',
    '../../../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.5, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        _delete_=True,
        type='ClassBalancedSubset',
        fraction=0.01,
        seed=0,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            split='train',
            pipeline=train_pipeline)))
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0,
         end=100)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=20)
val_cfg = dict()
test_cfg = dict()
custom_hooks = []
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=64)
