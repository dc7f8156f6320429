# Semi-supervised ImageNet fine-tuning with 1% of the labels: a class-balanced
# subset of 13 train images per class (12,811 x 1% / 1000 classes, rounded),
# fixed by seed (ClassBalancedSubset; the index list is the wrapper's
# .indices). The whole ResNet-50 trains: SGD momentum 0.9, wd 5e-4, backbone
# lr 0.01, head lr x10, 20 epochs with lr x0.1 at 12 and 16, batch 8x32=256.
#   bash tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_200.pth
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../../../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        # checkpoint='' is filled in with --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassBalancedSubset',
        fraction=0.01,
        seed=0,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root='data/imagenet',
            split='train',
            pipeline={{_base_.train_pipeline}})))

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[12, 16], gamma=0.1)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=2)
val_cfg = dict()
test_cfg = dict()
custom_hooks = []
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=256)
