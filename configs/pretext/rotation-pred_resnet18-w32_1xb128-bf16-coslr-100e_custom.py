# Rotation prediction (Gidaris et al. 2018), on a folder of your own images.
#
#   mm-instdisc-train rotation --data DIR [--size S] [--minutes M | --epochs E]
#
# fills in the block below from the data. With
# mmpretrain's tools/train.py, tools/dist_train.sh CONFIG N or our
# tools/train.py, edit the block (the keys that depend on it are computed
# from it here, so they agree). Images: any layout that mmpretrain's
# CustomDataset reads (nested folders too), jpg/png/bmp/tif/webp, grey, RGB,
# RGBA or 16-bit, any size (shorter side resized to img_size, centre square
# kept). A bad file stops the run before training, named;
# train_dataloader.dataset.skip_bad=True leaves such files out (listed in the
# log). See docs/own_data.md.
_base_ = './rotation-pred_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py'

data_root = 'data/my_images'
img_size = 96  # a multiple of 32
channels = 3  # 1 for grey images
mean = [123.675, 116.28, 103.53] if channels == 3 else [127.5]
std = [58.395, 57.12, 57.375] if channels == 3 else [63.75]
max_epochs = 100
time_budget_minutes = None  # max_epochs (mm-instdisc-train --minutes: a budget)

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    dataset=dict(
        _delete_=True,
        type='ImageFolderDataset',
        data_root=data_root,
        img_size=img_size,
        channels=channels,
        with_label=False,
        skip_bad=False,
        pipeline=[dict(type='PackInputs')]))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

model = dict(
    data_preprocessor=dict(
        mean=mean,
        std=std,
        augment=dict(
            crop_size=img_size,
            saturation=0.4 if channels == 3 else 0.0,
            hue=0.1 if channels == 3 else 0.0,
            grayscale_prob=0.2 if channels == 3 else 0.0)),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        in_channels=channels,
        stem_channels=32,
        base_channels=32,
        zero_init_residual=False),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
         end=max(1, max_epochs // 20), convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = [
    dict(type='LabelFreeMonitorHook', interval=50),
]
