# CPU-sized detection transfer: Mask R-CNN with FPN on the composed
# Fashion-MNIST set (tools/dataset_converters/make_fmnist_coco.py), with the
# backbone of our CPU pretraining configs (mmpretrain ResNet_CIFAR, depth 18,
# width 16, 1 input channel), so an NPID / AdCo / Exemplar Fashion-MNIST
# checkpoint loads with prefix 'backbone.':
#   python tools/det_train.py THIS_CONFIG \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_12.pth
# (model.backbone.init_cfg=None: the random-init baseline). Stages 2-4
# (strides 2, 4, 8) feed a 32-channel FPN plus a pooled level (stride 16);
# anchors of 16-128 px match the items (22-70 px). All layers train, BN
# statistics update (frozen_stages=-1, norm_eval=False; plain BN on one CPU).
# Box and mask AP on the val canvases (CocoMetric) every 2 epochs. Sized for
# speed (32-channel FPN and heads, 64 RoIs per image, RoIAlign sampling 2,
# fewer proposals): one batch-4 training step takes about 0.6 s on one
# thread of a busy 2-core machine (docs/transfer.md).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../../../_base_/datasets/fmnist-coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]

custom_imports = dict(imports=['mm_instdisc.det'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[72.94],  # Fashion-MNIST pixel statistics, as in pretraining
        std=[90.02],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        zero_init_residual=False,
        # checkpoint='' is filled in with --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(in_channels=[32, 64, 128], out_channels=32, num_outs=4),
    rpn_head=dict(
        in_channels=32,
        feat_channels=32,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            out_channels=32,
            featmap_strides=[2, 4, 8],
            finest_scale=28),
        bbox_head=dict(in_channels=32, fc_out_channels=256, num_classes=10),
        mask_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
            out_channels=32,
            featmap_strides=[2, 4, 8],
            finest_scale=28),
        mask_head=dict(
            num_convs=2, in_channels=32, conv_out_channels=32,
            num_classes=10)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=30)))

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True,
         milestones=[4, 5], gamma=0.1)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1))
auto_scale_lr = dict(enable=False, base_batch_size=4)

# an empty or missing pretrained checkpoint is an error naming the config key
# (mm_instdisc.det.PretrainedCheckHook), before any weight is initialised
custom_hooks = [dict(type='PretrainedCheckHook')]
