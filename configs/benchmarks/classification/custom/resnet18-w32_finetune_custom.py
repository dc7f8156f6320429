# Fine-tuning on your own labelled folder (one sub-folder per class, the
# sub-folder's name is the class), from the backbone of our folder
# pretraining configs (mmpretrain ResNet, depth 18, stem and base width 32,
# e.g. configs/npid/npid_resnet18-w32_1xb128-bf16-coslr-100e_custom.py).
# The whole network trains (backbone lr 0.01, head lr x10, BN statistics
# updated), with random resized crops and flips. Top-1 accuracy on the
# validation folder.
#
#   mm-instdisc-cls-train --mode finetune --train DIR --val DIR \
#       --checkpoint CKPT [--fraction 0.1] [--epochs E] [--size S]
#
# The data, model and the block (folders, image size, channels, checkpoint,
# mean / std, backbone, fraction, batch size, seed) are the linear probe's:
# ./resnet18-w32_linear-probe_custom.py, this file's _base_. The command
# fills in that block and max_epochs below (see docs/transfer.md,
# "Classification on your own folder"); with tools/train.py edit them there
# and here. This file overrides only what fine-tuning changes: the backbone
# trains, the crops, the optimizer, the epochs and the schedule on them.
#
# * fraction (in the probe's block): e.g. 0.01 or 0.1 for the 1% / 10%
#   protocols (the semi-supervised fine-tuning of the self-supervised
#   literature).
# * Batches are at least 2 images and the last incomplete one is dropped
#   (BatchNorm trains).
_base_ = ['./resnet18-w32_linear-probe_custom.py']

# ---- filled in by mm-instdisc-cls-train (edit by hand for tools/train.py)
max_epochs = 100
# ----

val_interval = max(1, max_epochs // 10)

# the whole backbone trains, its BN statistics updated
model = dict(backbone=dict(frozen_stages=-1, norm_eval=False))

# random resized crops before the probe's flips; the folder is the train
# dataset, or the one its subset draws from (``_base_`` is the probe's
# config here, mmengine binds it for Python configs)
train_pipeline = [
    dict(type='RandomResizedCrop', scale={{_base_.img_size}},
         crop_ratio_range=(0.5, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_folder = dict(pipeline=train_pipeline)
train_dataset = train_folder if _base_.fraction is None else dict(
    dataset=train_folder)
train_dataloader = dict(dataset=train_dataset)

# optimizer: the whole network, the head at 10x the backbone's lr
optim_wrapper = dict(
    optimizer=dict(lr=0.01, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
