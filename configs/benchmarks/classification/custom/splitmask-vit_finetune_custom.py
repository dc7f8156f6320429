# Fine-tuning SplitMask's ViT on your own labelled folder (one sub-folder per
# class), from a checkpoint of
# configs/splitmask/splitmask_vit-w64d4-p8_1xb128-bf16-coslr-100e_custom.py
# (mm-instdisc-train splitmask --data DIR). The data, augmentation and
# schedule are those of ./resnet18-w32_finetune_custom.py (its max_epochs,
# and the block of its _base_ ./resnet18-w32_linear-probe_custom.py:
# folders, image size, channels, checkpoint, mean / std, fraction, batch
# size, seed); this file swaps in the ViT and its optimizer.
#
#   mm-instdisc-cls-train --mode finetune --train DIR --val DIR \
#       --checkpoint CKPT [--fraction 0.1] [--epochs E] [--size S]
#
# fills in the blocks (the data's and the epochs there, the ViT's below)
# from the folders and the checkpoint (see docs/transfer.md, "Classification on your own
# folder"). With tools/train.py edit them instead.
#
# * Features: the mean of the ViT's patch tokens after its final norm
#   (out_type 'featmap' + GlobalAveragePooling), what SplitMask's pretraining
#   pools; see ./splitmask-vit_linear-probe_custom.py.
# * The whole ViT trains: AdamW lr 5e-4 (for batch 64), weight decay 0.05
#   (none on biases, norms, position embeddings, class token, layer scales),
#   layer-wise lr decay 0.75 (mmpretrain's
#   LearningRateDecayOptimWrapperConstructor: the head at lr, the patch
#   embedding at lr x 0.75^(num_layers + 1)), drop path 0.1, the base's
#   cosine schedule: as configs/splitmask/benchmarks/ fine-tune.
# * Position embeddings: kept at the pretraining grid (pretrain_size /
#   patch_size a side) and resized (bicubic) to the input's; img_size must be
#   a multiple of patch_size. A fixed sin-cos embedding (SplitMaskViT's
#   sincos_pos_embed, the pretraining default) stays fixed.
_base_ = ['./resnet18-w32_finetune_custom.py']

# ---- filled in by mm-instdisc-cls-train (edit by hand for tools/train.py)
backbone_type = 'SplitMaskViT'  # or 'VisionTransformer'
embed_dims = 64
num_layers = 4
num_heads = 4
feedforward_channels = 256
patch_size = 8
pretrain_size = 96  # pretraining image side: the position embeddings' grid
# ----

model = dict(
    backbone=dict(
        _delete_=True,
        type=backbone_type,
        arch=dict(
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels),
        img_size=pretrain_size,
        patch_size=patch_size,
        in_channels={{_base_.channels}},
        out_type='featmap',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint={{_base_.checkpoint}},
            prefix={{_base_.checkpoint_prefix}})),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=embed_dims))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4, weight_decay=0.05, betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.gamma': dict(decay_mult=0.0),
        }))
