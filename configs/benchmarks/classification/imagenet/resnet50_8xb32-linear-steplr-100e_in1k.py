# ImageNet linear probe of a self-supervised ResNet-50 (mmpretrain's
# benchmark protocol): backbone frozen (frozen_stages=4), linear head on the
# 2048-d pooled features, SGD lr 30, no weight decay, 100 epochs with lr x0.1
# at 60 and 80, batch 8x32=256, RandomResizedCrop 224 + flip.
#   bash tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_200.pth
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_steplr_100e.py',
    '../../../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        frozen_stages=4,
        # checkpoint='' is filled in with --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
custom_hooks = []
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
