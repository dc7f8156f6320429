# CPU-sized Exemplar-v2: ResNet-18 (CIFAR stem) at 1/4 width on 1x28x28
# images, a MoCo-v2 MLP neck to 128-d, t 0.2 and a queue of 4096 keys with
# their labels. Backbone, neck, key-encoder momentum and queue length equal
# those of configs/mocov2/mocov2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py
# (the benchmark's MoCo v2 baseline): the only difference is the label filter.
model = dict(
    type='ExemplarMoCo',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,  # key encoder m = 0.99 for short runs
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[72.94], std=[90.02]),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=128,
        hid_channels=128,
        out_channels=128,
        with_avg_pool=True),
    head=dict(type='LossHead', loss=dict(type='ExemplarLoss', temperature=0.2)))
