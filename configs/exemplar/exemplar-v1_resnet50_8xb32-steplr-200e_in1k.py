# Exemplar-v1 ResNet-50 on ImageNet-1k (Zhao et al., ICLR 2021): MoCo v1
# (linear neck to 128-d, t 0.07, queue 65536, key EMA 0.999, MoCo-v1
# augmentation) with same-class keys removed from the negatives; batch 256
# (8 x 32), SGD lr 0.03, x0.1 at epochs 120 and 160, 200 epochs. Paper: linear
# top-1 64.6, VOC07 detection AP 47.2.
_base_ = [
    '../_base_/models/exemplar-v1_resnet50.py',
    '../_base_/datasets/imagenet_bs32_exemplar-v1.py',
    '../_base_/schedules/sgd_steplr_200e.py',
    '../_base_/default_runtime.py',
]

model = dict(data_preprocessor={{_base_.data_preprocessor}})

# no memory bank, so no kNN validation during training: evaluate checkpoints
# with tools/knn_eval.py or the linear benchmark
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
val_cfg = None
test_cfg = None

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
