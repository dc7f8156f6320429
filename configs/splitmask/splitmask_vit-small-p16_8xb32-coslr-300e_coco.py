# SplitMask ViT-S/16 pretrained on COCO train2017 images only (118k images,
# no labels), 300 epochs, 8 GPUs x 32 = 256 (lr 1.5e-3 at 256). The paper's
# COCO-only recipe, whose backbone gives 45.3 box / 40.6 mask AP with
# Mask R-CNN (mask-rcnn_splitmask-vit-s_fpn_coco.py).
_base_ = [
    '../_base_/models/splitmask_vit-small-p16.py',
    '../_base_/datasets/coco_bs32_splitmask.py',
    '../_base_/schedules/splitmask_adamw_coslr_300e.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# different masks and augmentations on every rank
randomness = dict(seed=0, diff_rank_seed=True)
