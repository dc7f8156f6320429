# AdCo schedule: SGD lr 0.03 (cosine to 6e-4 per epoch, the official
# lr_final), momentum 0.9, wd 1e-4, 200 epochs. The negatives ascend with
# their own constant lr 3, momentum 0.9, wd 1e-4: torch's maximize=True in
# their param group makes the optimizer ascend them (any optim wrapper, AMP
# included), and AdCoNegativesInitHook pins the three against the param
# schedulers; lr is absolute, so auto_scale_lr does not scale it.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'negatives':
            dict(maximize=True, lr=3.0, momentum=0.9, weight_decay=1e-4)
        }))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=200,
        eta_min=6e-4,
        by_epoch=True,
        begin=0,
        end=200)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
