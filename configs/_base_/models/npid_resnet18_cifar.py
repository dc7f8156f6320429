model = dict(
    type='NPID',
    bank_size=50000,  # CIFAR-10 train
    feat_dim=128,
    bank_momentum=0.5,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[125.307, 122.961, 113.8575],
        std=[51.5865, 50.847, 51.255],
        to_rgb=False),
    backbone=dict(type='ResNet_CIFAR', depth=18, zero_init_residual=False),
    neck=dict(
        type='LinearNeck',
        in_channels=512,
        out_channels=128,
        gap_dim=2,
        norm_cfg=None),
    head=dict(
        type='LossHead',
        loss=dict(
            type='NPIDLoss',
            mode='nce',
            num_negatives=4096,
            temperature=0.1,
            # Z per sample from its own noise rows (eq. 8 as written): the paper's
            # one-shot Z collapses NCE on small data (docs/npid.md)
            z_mode='sample')))
