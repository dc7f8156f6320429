model = dict(
    type='NPID',
    bank_size=1281167,  # ImageNet-1k train; must equal len(train dataset)
    feat_dim=128,
    bank_momentum=0.5,  # weight kept on the old entry (official code)
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='LinearNeck',
        in_channels=2048,
        out_channels=128,
        gap_dim=2,
        norm_cfg=None),
    head=dict(
        type='LossHead',
        loss=dict(
            type='NPIDLoss',
            mode='nce',
            num_negatives=4096,
            temperature=0.07,
            # Z per sample from its own noise rows (eq. 8 as written): the paper's
            # one-shot Z collapses NCE on small data (docs/npid.md)
            z_mode='sample',
            prox_weight=0.0)))
