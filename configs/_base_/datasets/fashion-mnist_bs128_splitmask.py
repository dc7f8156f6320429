# Fashion-MNIST for SplitMask: 28x28 images resized to 32x32 (a multiple of
# the 4x4 patches), random resized crops and flips. The test split (for
# tools/knn_eval.py) is resized only.
dataset_type = 'FashionMNISTIDX'
data_root = '{{$MM_INSTDISC_DATA:data}}/fashion_mnist'

train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline))
test_evaluator = dict(type='KNNMetric', ks=(20, 200), temperature=0.07)
val_dataloader = None
val_evaluator = None
