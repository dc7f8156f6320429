# Faster R-CNN with FPN on your own COCO json (boxes only), initialised from
# the backbone of our folder pretraining configs: an mmpretrain ResNet (depth
# 18, stem and base width 32, e.g.
# configs/npid/npid_resnet18-w32_1xb128-bf16-coslr-100e_custom.py), or
# SplitMask's ViT through a simple feature pyramid (backbone_type
# 'mmpretrain.SplitMaskViT', e.g. from
# configs/splitmask/splitmask_vit-w64d4-p8_1xb128-bf16-coslr-100e_custom.py).
#
#   mm-instdisc-det-train --train ANN --train-images DIR --val ANN \
#       --val-images DIR --checkpoint CKPT [--arch faster-rcnn|mask-rcnn]
#
# fills in the block below from the json and the checkpoint and trains (see
# docs/transfer.md, "Detection on your own COCO json"). With mmdet's own
# tools/train.py (or ours, tools/det_train.py) edit the block instead: every
# key that depends on it is computed from it here, so they agree.
#
# * classes: the json's category names in the json's order (mmdet maps the
#   json's category ids to labels in that order). CocoJsonDataset checks them
#   and the json before training: a mismatch, an annotation whose image_id is
#   not an image, a box outside its image, an empty category list or a
#   missing image file is an error naming it.
# * Images of any size are resized to `scale` (long, short side limits,
#   keep_ratio=True) and padded to a multiple of 32.
# * Images without boxes are kept as negatives (filter_empty_gt=False); the
#   log says how many (with filter_empty_gt=True, how many were dropped).
# * norm (backbone normalisation):
#     'bn'     BN, statistics updated, all stages train (frozen_stages=-1,
#              norm_eval=False): one GPU or a CPU, batch >= 2.
#     'syncbn' SyncBN, otherwise as 'bn': the self-supervised transfer
#              protocol (MoCo, mmselfsup) on several GPUs; a single process
#              runs it as BN (mmengine reverts SyncBN).
#     'frozen' frozen BN (norm_eval=True, BN affine fixed) and frozen stem +
#              stage 1 (frozen_stages=1), mmdet's ImageNet recipe: for tiny
#              batches with pretrained weights. From random init the BN
#              statistics stay at their init (mean 0, variance 1).
# * Random-init baseline: the same backbone with the pretraining network's
#   own initialisation (set model.backbone.init_cfg to the pretraining
#   config's backbone init_cfg, or leave the key out: mmpretrain ResNet's
#   default Kaiming / constant init, which our pretraining configs use; not
#   None, which leaves PyTorch's default layer init). The command's
#   --random-init does this.
# * A ViT (backbone_type SplitMaskViT or VisionTransformer; embed_dims ...
#   pretrain_size): its last map (stride patch_size, out_type
#   'featmap') becomes a pyramid by SplitMaskSimpleFPN
#   (mm_instdisc/det/splitmask_fpn.py, ViTDet-style): scaled by those of 4,
#   2, 1, 0.5 that give a stride of feat_strides (the command takes the
#   whole strides >= 4 px, then doubles to four levels: 4, 8, 16, 32 for 8
#   or 16 px patches), the other levels stride-2 subsamplings. The position
#   embeddings keep the pretraining grid (pretrain_size / patch_size a side:
#   the checkpoint loads exactly) and are resized (bicubic) to each padded
#   input's grid, so any `scale` works; images are padded to a multiple of
#   the coarsest stride, itself one of patch_size. AdamW (lr 1e-4 x
#   batch_size / 16, weight decay 0.1, none on position embeddings, class
#   token, norms and layer scales), drop path 0.1, as in the SplitMask
#   paper's Mask R-CNN (configs/splitmask/mask-rcnn_splitmask-vit-s_fpn_
#   coco.py). `norm` applies to a ResNet's BN only.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]

custom_imports = dict(
    imports=[
        'mm_instdisc.det', 'mm_instdisc.det.splitmask_fpn',
        'mm_instdisc.models'
    ],
    allow_failed_imports=False)

# ---- filled in by mm-instdisc-det-train (edit by hand for tools/train.py)
train_ann = 'data/my_coco/annotations/train.json'
train_images = 'data/my_coco/train/'
val_ann = 'data/my_coco/annotations/val.json'
val_images = 'data/my_coco/val/'
classes = ('object', )  # the json's category names, in the json's order
scale = (853, 512)  # (long, short): shorter side min(median, 512)
checkpoint = ''  # pretraining checkpoint (backbone.* keys) or converted
channels = 3  # in_channels of the pretrained backbone (1: grey input)
mean = [123.675, 116.28, 103.53] if channels == 3 else [127.5]  # as in
std = [58.395, 57.12, 57.375] if channels == 3 else [63.75]  # pretraining
backbone_type = 'mmpretrain.ResNet'  # or 'mmpretrain.SplitMaskViT' (ViT)
depth = 18  # a ResNet's
stem_channels = 32
base_channels = 32
embed_dims = 64  # a ViT's
num_layers = 4
num_heads = 4
feedforward_channels = 256
patch_size = 8
pretrain_size = 96  # pretraining image side: the position embeddings' grid
feat_strides = [4, 8, 16, 32]  # strides of the four stages (pyramid levels)
norm = 'bn'  # 'bn', 'syncbn' or 'frozen' (see above)
max_epochs = 12
warmup_iters = 500  # must be well below max_epochs * images / batch_size
batch_size = 2
seed = 0
# head sizes: mmdet's (256, 512, 0: adaptive); on a CPU e.g. 64, 128, 2
fpn_channels = 256  # FPN, RPN and RoI feature channels
rois_per_image = 512  # RoIs sampled per image for the box head
roi_sampling_ratio = 0  # RoIAlign samples per bin side (0: adaptive)
# ----

num_classes = len(classes)
color_type = 'color' if channels == 3 else 'grayscale'
is_vit = not backbone_type.split('.')[-1].startswith('ResNet')
vit_scale_factors = [
    patch_size / s for s in feat_strides
    if patch_size / s in (4.0, 2.0, 1.0, 0.5)
]
pad_size_divisor = max(32, feat_strides[-1])
stage_channels = [
    base_channels * (4 if depth >= 50 else 1) * 2**i for i in range(4)
]
norm_cfg = dict(
    type='SyncBN' if norm == 'syncbn' else 'BN',
    requires_grad=norm != 'frozen')

model = dict(
    data_preprocessor=dict(
        mean=mean,
        std=std,
        bgr_to_rgb=channels == 3,
        pad_size_divisor=pad_size_divisor),
    backbone=dict(
        _delete_=True,
        type=backbone_type,
        arch=dict(
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels),
        img_size=pretrain_size,
        patch_size=patch_size,
        in_channels=channels,
        drop_path_rate=0.1,
        out_type='featmap',
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    if is_vit else dict(
        _delete_=True,
        type=backbone_type,
        depth=depth,
        in_channels=channels,
        stem_channels=stem_channels,
        base_channels=base_channels,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1 if norm == 'frozen' else -1,
        norm_cfg=norm_cfg,
        norm_eval=norm == 'frozen',
        zero_init_residual=False,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='SplitMaskSimpleFPN',
        in_channels=embed_dims,
        out_channels=fpn_channels,
        scale_factors=vit_scale_factors,
        num_outs=5) if is_vit else dict(
            in_channels=stage_channels, out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(strides=feat_strides + [feat_strides[-1] * 2])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7,
                           sampling_ratio=roi_sampling_ratio),
            out_channels=fpn_channels, featmap_strides=feat_strides),
        bbox_head=dict(in_channels=fpn_channels, num_classes=num_classes)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=rois_per_image))))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type,
         backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type,
         backend_args=backend_args),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
dataset_type = 'CocoJsonDataset'
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        ann_file=train_ann,
        data_prefix=dict(img=train_images),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=val_ann,
        data_prefix=dict(img=val_images),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric', ann_file=val_ann, metric='bbox', format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# schedule in epochs: linear warm-up over warmup_iters iterations, lr x0.1
# after 2/3 and 11/12 of the epochs (mmdet's 1x: 8 and 11 of 12); SGD with
# mmdet's lr 0.02 for batch 16 (a ViT: AdamW, lr 1e-4), scaled linearly to
# batch_size
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=1e-4 * batch_size / 16,
        betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(
        custom_keys={
            'backbone.pos_embed': dict(decay_mult=0.0),
            'backbone.cls_token': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
            '.ln': dict(decay_mult=0.0),
            '.gamma': dict(decay_mult=0.0),
        })) if is_vit else dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD',
                lr=0.02 * batch_size / 16,
                momentum=0.9,
                weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=sorted({
             m for m in (max_epochs * 2 // 3, max_epochs * 11 // 12)
             if 0 < m < max_epochs}),
         gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=seed)

# an empty or missing pretrained checkpoint (or one of another
# architecture) is an error naming the config key, before any weight is
# initialised (mm_instdisc.det.PretrainedCheckHook)
custom_hooks = [dict(type='PretrainedCheckHook')]
