# SplitMask (El-Nouby et al. 2021), on a folder of your own images: the
# method meant for pretraining on a small target data set.
#
#   mm-instdisc-train splitmask --data DIR [--size S] [--minutes M | --epochs E]
#
# fills in the block below from the data. With mmpretrain's tools/train.py,
# tools/dist_train.sh CONFIG N or our tools/train.py, edit the block: the
# image size, patch size and channels set the ViT, the decoder's patch grid,
# the tokenizer and the crop below, so they agree. Images: any layout that
# mmpretrain's CustomDataset reads (nested folders too), jpg/png/bmp/tif/webp,
# grey, RGB, RGBA or 16-bit, any size (shorter side resized to img_size,
# centre square kept). A bad file stops the run before training, named;
# train_dataloader.dataset.skip_bad=True leaves such files out (listed in the
# log). See docs/own_data.md.
_base_ = './splitmask_vit-w64d4-p4_1xb256-bf16-cos-15min_fashion-mnist.py'

data_root = 'data/my_images'
img_size = 96
patch_size = 8  # img_size // patch_size patches a side (12 x 12 here)
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
            brightness=0.4,
            contrast=0.4,
            saturation=0.4 if channels == 3 else 0.0,
            jitter_prob=0.8,
            grayscale_prob=0.2 if channels == 3 else 0.0)),
    backbone=dict(img_size=img_size, patch_size=patch_size,
                  in_channels=channels),
    neck=dict(patch_resolution=img_size // patch_size),
    target_generator=dict(patch_size=patch_size, in_channels=channels))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=max(1, max_epochs // 20), convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = [
    dict(type='LabelFreeMonitorHook', interval=50),
]
