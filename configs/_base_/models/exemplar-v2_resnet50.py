# Exemplar-v2 ResNet-50 (Zhao et al., ICLR 2021) on MoCo v2: key encoder EMA
# m = 0.999, 2-layer MLP neck to 128-d, t = 0.2, a queue of 65536 keys and
# their class labels; same-class queued keys are not negatives.
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
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True),
    head=dict(type='ExemplarHead', temperature=0.2))
