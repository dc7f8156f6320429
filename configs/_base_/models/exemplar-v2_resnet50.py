# Exemplar-v2 ResNet-50 (Zhao et al., ICLR 2021) on MoCo v2: Exemplar-v1's
# encoder pair and 65536-key queue with labels, but a 2-layer MLP neck to
# 128-d and t = 0.2; same-class queued keys are not negatives.
_base_ = './exemplar-v1_resnet50.py'

model = dict(
    neck=dict(
        _delete_=True,
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True),
    head=dict(loss=dict(temperature=0.2)))
