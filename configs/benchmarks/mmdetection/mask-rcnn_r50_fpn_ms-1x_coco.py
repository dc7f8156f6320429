# Mask R-CNN R50-FPN, 1x (12 epochs), COCO, initialised from a self-supervised
# ResNet-50 (the transfer protocol of the self-supervised benchmarks): SyncBN
# in the backbone, FPN and heads, no frozen stages, BN statistics updated
# (norm_eval=False), 4conv1fc box head, multi-scale training (short side
# 640-800). Pass the checkpoint (raw self-supervised or converted with
# --out-prefix backbone.) as in
#   bash tools/benchmarks/mmdetection/dist_train_fpn.sh THIS_CONFIG CKPT 8
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mm_instdisc.det'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        # checkpoint='' is filled in by the launcher / --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# 1x: 12 epochs, lr x0.1 after epochs 8 and 11 (mmdet's schedule_1x)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)

# an empty or missing pretrained checkpoint is an error naming the config key
# (mm_instdisc.det.PretrainedCheckHook), before any weight is initialised
custom_hooks = [dict(type='PretrainedCheckHook')]
