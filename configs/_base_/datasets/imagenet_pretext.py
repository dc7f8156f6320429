# ImageNet-1k training images for the pretext-task baselines (mmpretrain
# layout: data/imagenet/{train,meta}); the task config sets the pipeline. No
# validation during training (the pretext models have no memory bank): read a
# checkpoint out with tools/knn_eval.py or a linear probe.
dataset_type = 'ImageNet'
data_root = '{{$MM_INSTDISC_DATA:data}}/imagenet/'
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
