# CPU-sized Exemplar-v2 on Fashion-MNIST (60k labelled images, 10 epochs):
# the MoCo v2 baseline's backbone, neck, two-view pipeline, batch, SGD lr 0.03
# cosine and 4096-key queue, plus the label filter on the negatives.
# Evaluate with `python tools/knn_eval.py THIS_CONFIG CKPT --feature backbone`.
_base_ = [
    '../_base_/models/exemplar-v2_resnet18-w16_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_adco.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
val_cfg = None
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
# kNN reference for the test loop (tools/test.py): the training images'
# embeddings (no memory bank)
custom_hooks = [dict(type='KNNReferenceHook')]
