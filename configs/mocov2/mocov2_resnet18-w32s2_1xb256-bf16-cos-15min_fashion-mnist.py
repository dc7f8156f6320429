# MoCo v2 (mmpretrain's MoCo, v2 MLP neck) on all 60k Fashion-MNIST images
# within 15 minutes on a 2-core CPU: the shared two-view recipe, a queue of
# 8192 keys, t 0.1, key encoder m 0.99, crop scale (0.3, 1), 9 epochs.
# Measurements: benchmarks/reports/recipes.md and docs/adco.md ("Measurements
# behind the recipe: MoCo v2").
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_two-view.py'

model = dict(
    data_preprocessor=dict(augment=dict(crop_scale=(0.3, 1.0))),
    type='MoCo',
    queue_len=8192,
    feat_dim=128,
    momentum=0.01,  # mmpretrain's convention: key encoder m = 1 - 0.01
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.1))

max_epochs = 9
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

# mmpretrain's MoCo has no predict mode, so no kNN validation during training:
# the recipes benchmark reads the checkpoint out (tools/knn_eval.py does too).
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
custom_hooks = []
