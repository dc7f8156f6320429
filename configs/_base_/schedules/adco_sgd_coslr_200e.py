# AdCo schedule: SGD lr 0.03 (cosine to 6e-4 per epoch, the official
# lr_final), momentum 0.9, wd 1e-4, 200 epochs. The negatives ascend with
# their own constant lr 3, momentum 0.9, wd 1e-4:
# AdversarialNegativesOptimWrapper (built by its constructor over `type`, so
# AMP and tools/train.py --amp work) holds the three against the param
# schedulers and keeps them out of clip_grad. auto_scale_lr, when enabled,
# scales every group's lr, the negatives' included.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4),
    # AdversarialNegativesOptimWrapper over `type`: the negatives ascend
    constructor='AdversarialNegativesOptimWrapperConstructor',
    negatives_lr=3.0,
    negatives_momentum=0.9,
    negatives_weight_decay=1e-4)
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
