# Smallest Exemplar-v2 run: 10k Fashion-MNIST training images, batch 64, 2
# epochs (minutes on a CPU). E.g. `bash tools/dist_train.sh THIS_CONFIG 2`.
_base_ = './exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'

train_dataloader = dict(batch_size=64, dataset=dict(indices=10000))
test_dataloader = dict(dataset=dict(indices=2000))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)
]
train_cfg = dict(max_epochs=2)
auto_scale_lr = dict(base_batch_size=64)
