# Smallest SplitMask run: 10k Fashion-MNIST images, batch 64, 2 epochs (a few
# minutes on a CPU). E.g. `bash tools/dist_train.sh THIS_CONFIG 2`.
_base_ = './splitmask_vit-w128d4-p4_1xb128-coslr-20e_fashion-mnist.py'

train_dataloader = dict(batch_size=64, dataset=dict(indices=10000))
test_dataloader = dict(dataset=dict(indices=2000))
optim_wrapper = dict(optimizer=dict(lr=1.5e-3 * 64 / 256))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=50),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=0,
        end=2,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=2)
auto_scale_lr = dict(base_batch_size=64)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
