# Semi-supervised fine-tuning with 10% of the Fashion-MNIST labels (6,000
# images, 600 a class, ClassBalancedSubset; another subset with
# train_dataloader.dataset.seed) of the 15-minute recipes' network: ResNet-18
# (CIFAR stem) at width 32 with a stride-2 first stage. Everything else as the
# width-16 10% config: batch 128, SGD lr 0.01 (head x10), cosine, 30 epochs,
# top-1 on all 10,000 test images. claims_benchmark.py --recipes runs it for
# 10 epochs (--ft-epochs), as its full mode did with the width-16 config.
#   python tools/train.py THIS_CONFIG --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/recipes/npid/seed0/epoch_14.pth
_base_ = './resnet18-w16_1xb128-ft-coslr-30e_fashion-mnist-10pc.py'

model = dict(
    backbone=dict(stem_channels=32, base_channels=32, strides=(2, 2, 2, 2)),
    head=dict(in_channels=256))
