# AdCo on 10k Fashion-MNIST training images for 20 epochs, 2 processes x 64
# images (global batch 128, as the 1xb128 configs), e.g. on a CPU-only machine
#   bash tools/dist_train.sh THIS_CONFIG 2
#   python tools/knn_eval.py THIS_CONFIG work_dirs/<name>/epoch_20.pth --feature backbone
# The kNN reference set is this config's training set (the same 10k images).
# Measured (benchmarks/reports/adco.md): its backbone and embedding features beat
# the randomly initialised network's in kNN after these 20 epochs.
_base_ = './adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'

train_dataloader = dict(batch_size=64, dataset=dict(indices=10000))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, by_epoch=True, begin=0, end=20,
         eta_min=3e-4)
]
train_cfg = dict(max_epochs=20)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5,
                                     max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=128)

# BatchNorm across the 2 processes: plain BN, per-process batch statistics in
# the forward pass, as in the official AdCo code (DDP, no SyncBN);
# BNStatsSyncHook averages the running statistics over the ranks before every
# checkpoint and validation, so that neither depends on which rank's
# statistics survive.
custom_hooks = [
    dict(type='AdCoNegativesInitHook', log_interval=50),
    dict(type='KNNReferenceHook'),
]
