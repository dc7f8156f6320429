# NPID ResNet-50 on ImageNet-1k: NCE with m=4096, tau=0.07, batch 256,
# SGD lr 0.03 (x0.1 at 120/160), 200 epochs (Wu et al. 2018). Two deliberate
# changes (measured, docs/npid.md): Z is estimated per sample instead of once
# (z_mode='once' restores the official code), and the bank starts from a
# forward pass (one inference epoch, about a third of a training epoch).
_base_ = [
    '../_base_/models/npid_resnet50.py',
    '../_base_/datasets/imagenet_bs32_npid.py',
    '../_base_/schedules/sgd_steplr_200e.py',
    '../_base_/default_runtime.py',
]

model = dict(data_preprocessor={{_base_.data_preprocessor}})

# BatchNorm across GPUs: plain BN, per-GPU batch statistics in the forward
# pass, as in the official recipe (lemniscate.pytorch trains with
# nn.DataParallel, whose BN uses per-GPU batch statistics); BNStatsSyncHook
# averages the running statistics over the ranks before every checkpoint and
# validation, so that neither depends on which rank's statistics survive.
# For SyncBN set model.backbone.norm_cfg=dict(type='SyncBN').
custom_hooks = [
    # bank rows from one forward pass: positives are real embeddings from the
    # first step (a random bank delays learning by an epoch or two and makes
    # early positives noise; docs/npid.md)
    dict(type='MemoryBankHook', init='forward', log_interval=100),
    # kNN validation against the memory bank
    dict(type='KNNReferenceHook'),
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
