# Mask R-CNN with a SplitMask ViT-S/16 backbone on COCO, as in the paper's
# transfer experiment: the ViT's last map (stride 16) turned into a pyramid
# by pooling and transposed convolutions (ViTDet-style SplitMaskSimpleFPN,
# strides 4-32 plus a P6 for RPN), 3x schedule (36 epochs, lr x0.1 at 27 and
# 33), AdamW lr 1e-4 wd 0.1, drop path 0.1. Images keep mmdet's (1333, 800)
# resize and are padded to a multiple of 32 (so of the patch size 16); the
# 224-px position embeddings are resized to each input's grid (bicubic).
# Pretrained weights: model.backbone.init_cfg.checkpoint (a SplitMask
# checkpoint; its backbone.* weights are loaded).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
default_scope = 'mmdet'
custom_imports = dict(
    imports=['mm_instdisc.models', 'mm_instdisc.det.splitmask_fpn'],
    allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SplitMaskViT',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        sincos_pos_embed=False,
        out_type='featmap',
        final_norm=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/splitmask_vit-small-p16_8xb32-coslr-300e_'
            'coco/epoch_300.pth',
            prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='SplitMaskSimpleFPN',
        in_channels=384,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5))

# 3x schedule
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(
        custom_keys={
            'backbone.pos_embed': dict(decay_mult=0.0),
            'backbone.cls_token': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
            '.ln': dict(decay_mult=0.0),
            '.gamma': dict(decay_mult=0.0),
        }))
auto_scale_lr = dict(enable=False, base_batch_size=16)

# an empty or missing pretrained checkpoint is an error naming the config key
# (mm_instdisc.det.PretrainedCheckHook), before any weight is initialised
custom_hooks = [dict(type='PretrainedCheckHook')]
