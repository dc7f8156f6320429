# SplitMask on all 60k Fashion-MNIST images within 15 minutes on a 2-core CPU.
# Read out by fine-tuning on 6,000 labelled images:
# benchmarks/vit-w64d4-p4_splitmask-15min-pre_1xb128-bf16-coslr-30e_fashion-mnist-6k.py
# (tools/benchmarks/recipes_benchmark.py --methods splitmask does both, and
# fine-tunes the same ViT from random init beside it).
#
# Why these settings (a step of 256 images, 2 threads, bf16 autocast):
# * attention_backend='math': torch's CPU flash-attention backward in bf16 was
#   most of a step (ViT width 128, 32 px: 2.27 s with it, 1.30 s without);
# * the native 28 px with 4x4 patches (7x7 grid, 49 patches) instead of 32 px
#   (64 patches), width 64 (4 heads), 4 encoder layers and a 1-layer decoder:
#   0.48 s a step, against 0.81 s at 32 px / 2 decoder layers and 1.08 s at
#   width 128, so 6 epochs (1,404 steps) fit with headroom; the 5,000-image
#   SplitMask benchmark (docs/benchmarks/splitmask.md) used width 64 too;
# * augmentation on the batch (SplitMaskPreprocessor's augment, crops of 50-100% of
#   the image and flips, as the per-sample pipeline of the 20-epoch config);
# * AdamW lr 1.5e-3 at batch 256 (BEiT / SplitMask), a 200-step warm-up
#   (the 10-epoch warm-up of 300 would be most of this run) and cosine.
_base_ = [
    '../_base_/models/splitmask_vit-w128d4-p4_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_splitmask.py',
    '../_base_/schedules/splitmask_adamw_coslr_300e.py',
    '../_base_/default_runtime.py',
]

width = 64
model = dict(
    data_preprocessor=dict(
        augment=dict(
            crop_size=28,
            crop_scale=(0.5, 1.0),
            flip_prob=0.5,
            value_max=255.0)),
    backbone=dict(
        arch=dict(
            embed_dims=width,
            num_layers=4,
            num_heads=4,
            feedforward_channels=4 * width),
        img_size=28),
    neck=dict(embed_dims=width, patch_resolution=7, num_layers=1),
    head=dict(loss=dict(embed_dims=width)))

# the pipeline only packs images: SplitMaskPreprocessor augments the batch
train_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# the test split at its native 28 px (tools/test.py: kNN of pooled tokens)
test_dataloader = dict(dataset=dict(pipeline=[dict(type='PackInputs')]))

max_epochs = 6
optim_wrapper = dict(
    type='AutocastOptimWrapper',
    dtype='bfloat16',
    attention_backend='math',
    optimizer=dict(lr=1.5e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
custom_hooks = [dict(type='RandomStateHook')]
auto_scale_lr = dict(base_batch_size=256)
