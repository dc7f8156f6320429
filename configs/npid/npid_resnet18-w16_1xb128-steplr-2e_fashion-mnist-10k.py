# Smallest NPID run: 10k Fashion-MNIST training images, 2 epochs (minutes on a
# CPU). Used for quick checks, e.g. `bash tools/dist_train.sh THIS_CONFIG 2`.
_base_ = './npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py'

model = dict(bank_size=10000)
train_dataloader = dict(batch_size=64, dataset=dict(indices=10000))
val_dataloader = dict(dataset=dict(indices=2000))
test_dataloader = val_dataloader
param_scheduler = []
train_cfg = dict(max_epochs=2, val_interval=1)
