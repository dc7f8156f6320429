# Linear probe on your own labelled folder (one sub-folder per class, the
# sub-folder's name is the class), from the backbone of our folder
# pretraining configs (mmpretrain ResNet, depth 18, stem and base width 32,
# e.g. configs/npid/npid_resnet18-w32_1xb128-bf16-coslr-100e_custom.py).
# The backbone is frozen (frozen_stages=4: stem and all four stages have
# requires_grad=False; norm_eval=True: their BN layers stay in eval mode),
# only the LinearClsHead on the pooled features trains. Top-1 accuracy on the
# validation folder.
#
#   mm-instdisc-cls-train --train DIR --val DIR --checkpoint CKPT \
#       [--mode probe|finetune] [--fraction 0.1] [--epochs E] [--size S]
#
# fills in the block below from the folders and the checkpoint and trains
# (see docs/transfer.md, "Classification on your own folder"). With
# tools/train.py edit the block instead: every key that depends on it is
# computed from it here, so they agree. The block is also the fine-tuning
# config's (./resnet18-w32_finetune_custom.py, whose _base_ is this file and
# which sets its own max_epochs) and, through them, the SplitMask ViT
# configs' (./splitmask-vit_*_custom.py).
#
# * Images of any size and mode are decoded by ImageFolderDataset: shorter
#   side resized to img_size, centre square, converted to `channels` (the
#   pretrained backbone's input channels). Bad files stop the run, named.
# * fraction: train on a seeded share of every class (ClassBalancedSubset,
#   mode='stratified': class c keeps max(1, round(fraction * n_c)) images,
#   chosen with `seed`), e.g. 0.01 or 0.1 for the 1% / 10% protocols; None
#   trains on the whole folder. Validation always uses the whole val folder.
_base_ = ['../../../_base_/default_runtime.py']

# ---- filled in by mm-instdisc-cls-train (edit by hand for tools/train.py)
train_root = 'data/my_labelled/train'
val_root = 'data/my_labelled/val'
img_size = 96  # side of the square images the network sees
channels = 3  # in_channels of the pretrained backbone (1: grey input)
num_classes = 2  # sub-folders of train_root (and of val_root)
checkpoint = ''  # pretraining checkpoint (backbone.* keys) or converted
checkpoint_prefix = 'backbone.'  # None for a converted backbone file
mean = [123.675, 116.28, 103.53] if channels == 3 else [127.5]  # as in
std = [58.395, 57.12, 57.375] if channels == 3 else [63.75]  # pretraining
backbone_type = 'ResNet'
depth = 18
stem_channels = 32
base_channels = 32
fraction = None  # e.g. 0.01 or 0.1: a seeded share of every class
max_epochs = 50
batch_size = 64
seed = 0  # the run's seed and the subset's
# ----

feat_channels = base_channels * 8 * (4 if depth >= 50 else 1)
topk = (1, 5) if num_classes >= 5 else (1, )
val_interval = max(1, max_epochs // 10)

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', mean=mean, std=std,
        num_classes=num_classes),
    backbone=dict(
        type=backbone_type,
        depth=depth,
        in_channels=channels,
        stem_channels=stem_channels,
        base_channels=base_channels,
        zero_init_residual=False,
        frozen_stages=4,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint,
            prefix=checkpoint_prefix)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=feat_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=topk))

# ImageFolderDataset hands the pipeline a decoded uint8 H x W (x C) array
train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_folder = dict(
    type='ImageFolderDataset',
    data_root=train_root,
    with_label=True,
    img_size=img_size,
    channels=channels,
    pipeline=train_pipeline)
train_dataset = train_folder if fraction is None else dict(
    type='ClassBalancedSubset',
    fraction=fraction,
    mode='stratified',
    seed=seed,
    dataset=train_folder)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=train_dataset)
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageFolderDataset',
        data_root=val_root,
        with_label=True,
        img_size=img_size,
        channels=channels,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=topk)
test_evaluator = val_evaluator

# optimizer: only the head has trainable parameters
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=val_interval,
                    max_keep_ckpts=1, save_best='accuracy/top1'))
randomness = dict(seed=seed, deterministic=False)
