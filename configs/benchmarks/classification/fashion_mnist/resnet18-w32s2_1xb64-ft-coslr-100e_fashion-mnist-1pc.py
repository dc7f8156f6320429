# Semi-supervised fine-tuning with 1% of the Fashion-MNIST labels (600
# images, 60 a class, ClassBalancedSubset; another subset with
# train_dataloader.dataset.seed) of the 15-minute recipes' network: ResNet-18
# (CIFAR stem) at width 32 with a stride-2 first stage. Everything else as the
# width-16 config: SGD lr 0.01 (head x10), cosine, 100 epochs of 9
# iterations, top-1 on all 10,000 test images (validated at the end only).
#   python tools/train.py THIS_CONFIG --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/recipes/npid/seed0/epoch_14.pth
_base_ = './resnet18-w16_1xb64-ft-coslr-100e_fashion-mnist-1pc.py'

model = dict(
    backbone=dict(stem_channels=32, base_channels=32, strides=(2, 2, 2, 2)),
    head=dict(in_channels=256))
train_cfg = dict(val_interval=100)
default_hooks = dict(checkpoint=dict(interval=100))
