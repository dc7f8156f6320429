# NPID ResNet-50 on ImageNet-21k (14,197,088 training images, mmpretrain's
# ImageNet21k layout: data/imagenet21k/train/<class>/*.JPEG and
# meta/train.txt), with the exact full non-parametric softmax over every row
# of a memory bank split across the ranks.
#
# Why sharded: a replicated float32 bank of 14.2M x 128 is 7.3 GB on every GPU;
# ShardedMemoryBank in bfloat16 holds 3.6 GB over all ranks, 57 MB per GPU at
# 64 GPUs (benchmarks/reports/scaling.md has the measured and projected tables). The loss is
# the distributed log-sum-exp over all 14.2M rows (no NCE / Z approximation):
# each rank scores the gathered 4096 queries against its own 222k rows, in
# float32, and two all-reduces of 4096 numbers combine them.
#
# 64 GPUs x 64 images (8 nodes x 8: tools/dist_train.sh on each node, or
# slurm); SGD lr 0.03 x 4096 / 256 (auto_scale_lr), warm-up 2 epochs, cosine
# over 30 epochs (an ImageNet-21k epoch is 11x an ImageNet-1k one). No
# validation during training (ImageNet-21k has no validation split): read the
# backbone out on ImageNet-1k with tools/knn_eval.py or the linear-probe
# configs. tests/test_engine/test_in21k_config.py builds this config and runs
# it for a few iterations on tiny files in this layout with 2 processes.
_base_ = [
    '../_base_/models/npid_resnet50.py',
    '../_base_/datasets/imagenet_bs32_npid.py',
    '../_base_/default_runtime.py',
]

data_root = '{{$MM_INSTDISC_DATA:data}}/imagenet21k/'
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    bank_size=14197088,  # must equal len(train dataset): checked at start
    bank=dict(type='ShardedMemoryBank', dtype='bfloat16'),
    head=dict(loss=dict(mode='softmax', temperature=0.07)))

train_dataloader = dict(
    batch_size=64,
    num_workers=10,
    dataset=dict(type='ImageNet21k', data_root=data_root, split='train'))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=28, by_epoch=True, begin=2, end=30,
         eta_min=0.0)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30)
auto_scale_lr = dict(base_batch_size=256)

custom_hooks = [
    # random unit rows (seeded: the same bank for any number of ranks);
    # MemoryBankHook gathers the shards on rank 0 before every checkpoint
    # (3.6 GB of host memory there), and a checkpoint re-shards itself when
    # resumed on another number of ranks
    dict(type='MemoryBankHook', init='random', log_interval=100),
    # kNN validation against the memory bank
    dict(type='KNNReferenceHook'),
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
