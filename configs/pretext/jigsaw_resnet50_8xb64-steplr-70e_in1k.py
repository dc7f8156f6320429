# Jigsaw puzzles (Noroozi and Favaro, ECCV 2016) on ImageNet-1k with ResNet-50:
# images resized to 256 px and cropped to 225, 3x3 cells of 75 px with a
# random 64 px tile in each, every tile standardised on its own, shuffled by
# one of the paper's 1000 permutations of maximal Hamming distance; the 9
# tiles' pooled features (9 x 2048, puzzle order) into an MLP 18432 -> 4096 ->
# 1000 (the paper's fc7 / fc8; its fc6 was per tile). Grayscale in 30% of the
# images, as the paper. The paper trained an AlexNet-style network with lr
# 0.01 for 350k iterations of 256; here the other pretext configs' schedule
# with lr 0.1 (70 epochs, steps at 30 and 50), 64 images a GPU, 8 GPUs.
_base_ = [
    '../_base_/models/pretext_resnet50.py',
    '../_base_/datasets/imagenet_pretext.py',
    '../_base_/schedules/pretext_sgd_steplr_70e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='JigsawPuzzle',
    tile=64,
    num_permutations=1000,
    head=dict(
        loss=dict(in_channels=9 * 2048, num_classes=1000,
                  hidden_channels=4096)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='RandomCrop', crop_size=225),
    dict(type='RandomGrayscale', prob=0.3, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.1))
auto_scale_lr = dict(base_batch_size=512)

# the model draws its patch positions (and permutations) from the global RNG:
# each rank its own (rank 0 keeps the seed)
randomness = dict(seed=0, diff_rank_seed=True)
