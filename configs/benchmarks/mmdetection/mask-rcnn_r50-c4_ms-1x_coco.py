# Mask R-CNN R50-C4, 1x (12 epochs), COCO, initialised from a self-supervised
# ResNet-50: the protocol of MoCo / Exemplar / mmselfsup. res2-res4 form the
# backbone, res5 is the RoI head (initialised from the same checkpoint) plus
# one extra norm layer (mmpretrain's ResLayerExtraNorm, registered into
# mmdet's registry by mm_instdisc.det); SyncBN everywhere, no frozen
# stages, norm_eval=False, pytorch-style blocks and torchvision's RGB
# normalisation (as in pretraining), multi-scale training.
#   bash tools/benchmarks/mmdetection/dist_train_c4.sh THIS_CONFIG CKPT 8
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py'

custom_imports = dict(imports=['mm_instdisc.det'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        # checkpoint='' is filled in by the launcher / --cfg-options
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    roi_head=dict(
        shared_head=dict(
            type='ResLayerExtraNorm',
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            # res5 = layer4 of the pretrained backbone
            init_cfg=dict(
                type='Pretrained', checkpoint='', prefix='backbone.'))))

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
