# Linear probe of SplitMask's ViT on your own labelled folder (one
# sub-folder per class), from a checkpoint of
# configs/splitmask/splitmask_vit-w64d4-p8_1xb128-bf16-coslr-100e_custom.py
# (mm-instdisc-train splitmask --data DIR). The data, schedule and head are
# those of ./resnet18-w32_linear-probe_custom.py (its block: folders, image
# size, channels, checkpoint, mean / std, epochs, batch size, seed); this
# file swaps in the ViT.
#
#   mm-instdisc-cls-train --train DIR --val DIR --checkpoint CKPT \
#       [--mode probe|finetune] [--fraction 0.1] [--epochs E] [--size S]
#
# fills in both blocks (the data's there, the ViT's below) from the folders
# and the checkpoint (see docs/transfer.md, "Classification on your own
# folder"). With tools/train.py edit them instead.
#
# * Features: the mean of the ViT's patch tokens after its final norm
#   (out_type 'featmap' + GlobalAveragePooling), what SplitMask's pretraining
#   pools (its InfoNCE matches the branches' average-pooled tokens; its kNN
#   read-out is this mean); the class token is not trained by any loss.
# * The ViT is frozen (frozen_stages=num_layers: patch embedding, position
#   embedding, class token, all layers and the final norm have
#   requires_grad=False; no dropout or drop path), only the LinearClsHead
#   trains.
# * Position embeddings: trained at pretrain_size px (pretrain_size /
#   patch_size a side), kept at that grid so the checkpoint loads exactly,
#   and resized (bicubic) to the input's grid when img_size differs; img_size
#   must be a multiple of patch_size. The command's default img_size is
#   pretrain_size.
_base_ = ['./resnet18-w32_linear-probe_custom.py']

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
        frozen_stages=num_layers,
        drop_path_rate=0.,
        init_cfg=dict(
            type='Pretrained',
            checkpoint={{_base_.checkpoint}},
            prefix={{_base_.checkpoint_prefix}})),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=embed_dims))
