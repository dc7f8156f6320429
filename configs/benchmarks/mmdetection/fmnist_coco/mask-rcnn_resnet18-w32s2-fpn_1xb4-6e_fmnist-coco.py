# The detection transfer of mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py
# with the backbone of the 15-minute Fashion-MNIST recipes
# (configs/_base_/recipes/, configs/npid/npid_resnet18-w32s2_*: ResNet_CIFAR
# depth 18, width 32, every stage stride 2), so their checkpoints load with
# prefix 'backbone.'. Stages 2-4 have strides 4, 8, 16 (64, 128, 256
# channels) and feed the same 32-channel FPN plus a pooled level (stride
# 32); anchor scale 4 keeps the w16 detector's anchors of 16-128 px, and
# RoIs map to levels by the same sizes (finest_scale 28). Same heads,
# schedule, data and metrics as the w16 config:
#   python benchmarks/detection_benchmark.py --config THIS_CONFIG \
#       --start npid=work_dirs/recipes/npid/seed0/epoch_14.pth --start random=none
_base_ = './mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py'

model = dict(
    backbone=dict(stem_channels=32, base_channels=32, strides=(2, 2, 2, 2)),
    neck=dict(in_channels=[64, 128, 256]),
    rpn_head=dict(
        anchor_generator=dict(scales=[4], strides=[4, 8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16]),
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16])))
