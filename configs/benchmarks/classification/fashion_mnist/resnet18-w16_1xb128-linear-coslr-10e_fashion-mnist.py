# Linear probe on Fashion-MNIST: the pretrained backbone is frozen
# (frozen_stages=4: stem and all four stages have requires_grad=False and
# their BN layers stay in eval mode), only the LinearClsHead on the pooled
# 128-d features trains. All 60k train images, top-1/top-5 on t10k.
#   python tools/train.py THIS_CONFIG \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_12.pth
_base_ = [
    '../../../_base_/models/resnet18-w16_fashion-mnist_cls.py',
    '../../../_base_/datasets/fashion-mnist_bs128_npid.py',
    '../../../_base_/default_runtime.py',
]

model = dict(backbone=dict(frozen_stages=4, norm_eval=True))

train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# optimizer: only the head has trainable parameters
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
custom_hooks = []
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=128)
