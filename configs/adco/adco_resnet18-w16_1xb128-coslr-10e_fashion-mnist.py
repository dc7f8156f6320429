# CPU-sized AdCo on Fashion-MNIST: 4096 negatives initialised from the keys of
# the first 32 iterations, t 0.12, mem_t 0.02, SGD lr 0.03 cosine over 10
# epochs, negatives lr 3 (constant). Evaluate with tools/knn_eval.py.
_base_ = [
    '../_base_/models/adco_resnet18-w16_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_adco.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=5e-4),
    # AdversarialNegativesOptimWrapper over `type`: the negatives ascend
    constructor='AdversarialNegativesOptimWrapperConstructor',
    negatives_lr=3.0,
    negatives_momentum=0.9,
    negatives_weight_decay=1e-4)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
val_cfg = None
test_cfg = dict()

custom_hooks = [
    dict(type='AdCoNegativesInitHook', log_interval=50),
    # kNN reference for the test loop (tools/test.py): the training images'
    # embeddings (AdCo has no memory bank)
    dict(type='KNNReferenceHook'),
]
auto_scale_lr = dict(base_batch_size=128)
