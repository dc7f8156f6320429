# Colorization (Zhang et al., ECCV 2016) on the COCO train2017 images (no
# labels): the ImageNet config's model and schedule on the image folder the
# SplitMask COCO configs read (data/coco/train2017/*.jpg), random resized
# crops of 224 px and flips.
_base_ = './colorization_resnet50-d8_8xb32-steplr-70e_in1k.py'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='{{$MM_INSTDISC_DATA:data}}/coco/',
        data_prefix='train2017',
        with_label=False,
        pipeline={{_base_.train_pipeline}}))
