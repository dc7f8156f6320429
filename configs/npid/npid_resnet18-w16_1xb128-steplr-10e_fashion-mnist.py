# CPU-sized NPID on Fashion-MNIST: NCE (m=4096, tau=0.1, Z per sample), bank
# initialised by one forward pass, 10 epochs, kNN on the test set every 2 epochs.
_base_ = [
    '../_base_/models/npid_resnet18-w16_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_npid.py',
    '../_base_/default_runtime.py',
]

# Z per sample (the model base's z_mode='sample', eq. 8 as written): a one-shot
# Z from the first batch collapses NCE here and an EMA lags behind the true
# partition function (measured, see docs/npid.md).

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[6, 8], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=2)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [
    dict(type='MemoryBankHook', init='forward', log_interval=50),
    # kNN validation against the memory bank
    dict(type='KNNReferenceHook'),
]
auto_scale_lr = dict(base_batch_size=128)
