# AdCo ResNet-50 on ImageNet-1k: 65536 negatives, t 0.12, mem_t 0.02,
# batch 256, SGD lr 0.03 cosine, negatives lr 3, 200 epochs. Official
# README: linear top-1 68.6.
_base_ = [
    '../_base_/models/adco_resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    '../_base_/schedules/adco_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

model = dict(data_preprocessor={{_base_.data_preprocessor}})

# BatchNorm across GPUs: plain BN, per-GPU batch statistics in the forward
# pass, as in the official recipe (the official AdCo code (DDP, no SyncBN) uses per-GPU batch statistics);
# BNStatsSyncHook averages the running statistics over the ranks before
# every checkpoint and validation, so that neither depends on which rank's
# statistics survive. For SyncBN set model.backbone.norm_cfg=dict(type='SyncBN').
custom_hooks = [
    dict(type='AdCoNegativesInitHook', log_interval=100),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
