# mmselfsup 0.x's schedule of its rotation-prediction and relative-location
# ImageNet models: SGD lr 0.2 (8 GPUs), momentum 0.9, weight decay 1e-4 (x5 on
# the classifier), x0.1 at epochs 30 and 50, 70 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(decay_mult=5.0)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[30, 50], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=70)
