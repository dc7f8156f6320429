# AdCo on all 60k Fashion-MNIST images within 15 minutes on a 2-core CPU: the
# shared two-view recipe with 8192 adversarial negatives (t 0.12, mem_t 0.05,
# negatives lr 1 on the encoder's schedule, key encoder not reset), 9 epochs.
# Measurements: docs/adco.md ("Keeping the negatives adversarial",
# "Measurements behind the recipe") and benchmarks/reports/recipes.md.
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_two-view.py'

model = dict(
    type='AdCo',
    num_negatives=8192,
    feat_dim=128,
    momentum=0.01,  # key encoder m = 0.99
    symmetric=False,
    multi_crop=False,
    negatives_init='keys',
    reset_key_encoder=False,
    head=dict(
        type='LossHead',
        loss=dict(
            type='AdCoLoss',
            temperature=0.12,
            mem_temperature=0.05,
            batch_negatives=True)))

# the base's bf16 AutocastOptimWrapper, made adversarial: the negatives
# ascend with lr 1 on the encoder's warm-up + cosine (schedule_negatives_lr)
optim_wrapper = dict(
    constructor='AdversarialNegativesOptimWrapperConstructor',
    negatives_lr=1.0,
    negatives_momentum=0.9,
    negatives_weight_decay=1e-4,
    schedule_negatives_lr=True)

max_epochs = 9
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.0006)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
custom_hooks = [
    dict(type='AdCoNegativesInitHook', log_interval=50),
]
# tools/test.py and tools/knn_eval.py still evaluate a checkpoint (kNN of the
# embeddings against the training set); no validation during training
val_dataloader = None
val_evaluator = None
val_cfg = None
