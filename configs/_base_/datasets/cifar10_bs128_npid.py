# CIFAR-10 (python pickle batches in data/cifar10/cifar-10-batches-py).
dataset_type = 'CIFAR10'
data_root = '{{$MM_INSTDISC_DATA:data}}/cifar10/'

# NPID CIFAR recipe (lemniscate cifar.py): crop 0.2-1, grayscale 0.2, then
# colour jitter 0.4 (hue included) always; no flip (commented out there).
train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.4),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline))
val_evaluator = dict(type='KNNMetric', ks=(200, ), temperature=0.07)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
