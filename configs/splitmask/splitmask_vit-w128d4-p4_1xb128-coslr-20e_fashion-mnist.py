# CPU-sized SplitMask on Fashion-MNIST (60k images at 32 px), batch 128,
# AdamW lr 1.5e-3 * 128/256, 2 warm-up epochs, cosine, 20 epochs.
# Evaluate with tools/knn_eval.py (pooled encoder tokens) or fine-tune with
# benchmarks/vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_fashion-mnist.py.
_base_ = [
    '../_base_/models/splitmask_vit-w128d4-p4_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs128_splitmask.py',
    '../_base_/schedules/splitmask_adamw_coslr_300e.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=1.5e-3 * 128 / 256))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=2,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=2,
        end=20,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
val_cfg = None
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5))
randomness = dict(seed=0, diff_rank_seed=True)
