# Exemplar-v1 ResNet-50 (Zhao et al., ICLR 2021) on MoCo v1: key encoder EMA
# m = 0.999, a linear neck (global average pool, fc 2048 -> 128), t = 0.07,
# a queue of 65536 keys and their class labels.
model = dict(
    type='ExemplarMoCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,  # weight of the new parameters (MoCo m = 0.999)
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
    head=dict(type='LossHead', loss=dict(type='ExemplarLoss', temperature=0.07)))
