# CPU-sized NPID: ResNet-18 (CIFAR stem) at 1/4 width on 1x28x28 images.
model = dict(
    type='NPID',
    bank_size=60000,  # Fashion-MNIST train
    feat_dim=128,
    bank_momentum=0.5,
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
        type='LinearNeck',
        in_channels=128,
        out_channels=128,
        gap_dim=2,
        norm_cfg=None),
    head=dict(
        type='NPIDHead',
        loss_mode='nce',
        num_negatives=4096,
        temperature=0.1,
        z_mode='once'))
