# Semi-supervised fine-tuning on Fashion-MNIST with 10% of the labels: 600
# train images per class (6000), fixed by the seed (ClassBalancedSubset).
# Whole network, backbone lr 0.01, head lr x10, 30 epochs; top-1 on t10k.
_base_ = './resnet18-w16_1xb64-ft-coslr-100e_fashion-mnist-1pc.py'

train_dataloader = dict(batch_size=128, dataset=dict(fraction=0.1))

param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=30, by_epoch=True, begin=0, end=30)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=10)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=128)
