# Fashion-MNIST (IDX files, see tools/setup.sh) for instance discrimination.
dataset_type = 'FashionMNISTIDX'
data_root = '{{$MM_INSTDISC_DATA:data}}/fashion_mnist'

train_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.5, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

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

# weighted kNN on the test set against the memory bank (KNNReferenceHook)
val_dataloader = dict(
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
val_evaluator = dict(type='KNNMetric', ks=(20, 200), temperature=0.07)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
