# SplitMask ViT-B/16 on COCO images only, 300 epochs, batch 256 (the paper's
# ViT-B ablation recipe; drop path 0.1, layer scale 0.1).
_base_ = './splitmask_vit-small-p16_8xb32-coslr-300e_coco.py'

model = dict(
    backbone=dict(arch='base'),
    neck=dict(embed_dims=768, num_heads=12),
    head=dict(loss=dict(embed_dims=768)))
