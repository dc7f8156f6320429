# Relative patch location (Doersch et al., ICCV 2015) on ImageNet-1k with
# ResNet-50: images resized to 292 px and cropped to 255, a 3x3 grid of 64 px
# patches 21 px apart, each moved by up to 7 px (the paper's jitter; 3 * 64 +
# 2 * 21 + 2 * 7 = 248 px), the centre paired with its 8 neighbours, the pair's
# pooled features (2 x 2048) into an MLP 4096 -> 4096 -> 8 (mmselfsup 0.x's
# RelativeLocNeck + linear head). Grayscale in 2 of 3 images, against the
# chromatic-aberration shortcut the paper describes. lr 0.2, 70 epochs,
# 64 images a GPU, 8 GPUs.
_base_ = [
    '../_base_/models/pretext_resnet50.py',
    '../_base_/datasets/imagenet_pretext.py',
    '../_base_/schedules/pretext_sgd_steplr_70e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='RelativeLoc',
    patch=64,
    gap=21,
    jitter=7,
    head=dict(
        loss=dict(in_channels=4096, num_classes=8, hidden_channels=4096)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=292, edge='short', backend='pillow'),
    dict(type='RandomCrop', crop_size=255),
    dict(type='RandomGrayscale', prob=0.66, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(base_batch_size=512)

# the model draws its patch positions (and permutations) from the global RNG:
# each rank its own (rank 0 keeps the seed)
randomness = dict(seed=0, diff_rank_seed=True)
