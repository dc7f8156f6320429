# Mask R-CNN with FPN on your own COCO json whose annotations have
# segmentations (polygons or RLE): the Faster R-CNN config next to this one
# plus mmdet's mask branch, with box and mask AP. The settings that follow
# from the data (json and image paths, classes, scale, checkpoint, channels,
# epochs, seed, norm) are the block of ./faster-rcnn_r18-w32_fpn_custom.py:
# edit them there (or pass --cfg-options); mm-instdisc-det-train --arch
# mask-rcnn writes both files filled in. CocoJsonDataset(with_mask=True)
# also refuses annotations without a segmentation.
_base_ = './faster-rcnn_r18-w32_fpn_custom.py'

model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14,
                           sampling_ratio={{_base_.roi_sampling_ratio}}),
            out_channels={{_base_.fpn_channels}},
            featmap_strides={{_base_.feat_strides}}),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels={{_base_.fpn_channels}},
            conv_out_channels={{_base_.fpn_channels}},
            num_classes={{_base_.num_classes}},
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

train_pipeline = [
    dict(type='LoadImageFromFile', color_type={{_base_.color_type}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={{_base_.scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type={{_base_.color_type}}),
    dict(type='Resize', scale={{_base_.scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(pipeline=train_pipeline, with_mask=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, with_mask=True))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
