# Exemplar-v2 ResNet-50 on ImageNet-1k (Zhao et al., ICLR 2021): MoCo v2
# (MLP neck to 128-d, t 0.2, queue 65536, key EMA 0.999, MoCo-v2
# augmentation) with same-class keys removed from the negatives; batch 256
# (8 x 32), SGD lr 0.03 cosine, 200 epochs. Paper: linear top-1 68.9, VOC07
# detection AP 48.8.
_base_ = [
    '../_base_/models/exemplar-v2_resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

model = dict(data_preprocessor={{_base_.data_preprocessor}})

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
