# AdCo ResNet-50 (Hu et al., CVPR 2021): MoCo-v2 encoder pair (key encoder
# EMA m=0.999, 2-layer MLP neck to 128-d) against 65536 adversarial
# negatives initialised from the keys of the first iterations.
model = dict(
    type='AdCo',
    num_negatives=65536,
    feat_dim=128,
    momentum=0.001,  # weight of the new parameters (official m = 0.999)
    symmetric=False,
    multi_crop=False,
    negatives_init='keys',
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='LossHead',
        loss=dict(
            type='AdCoLoss',
            temperature=0.12,
            mem_temperature=0.02,
            batch_negatives=True)))
