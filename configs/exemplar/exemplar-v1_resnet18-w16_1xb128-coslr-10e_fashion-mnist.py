# CPU-sized Exemplar-v1 on Fashion-MNIST: as the v2 config but with MoCo v1's
# linear neck (global average pool, fc to 128-d) and t 0.07.
_base_ = './exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'

model = dict(
    neck=dict(
        _delete_=True,
        type='LinearNeck',
        in_channels=128,
        out_channels=128,
        gap_dim=2,
        norm_cfg=None),
    head=dict(loss=dict(temperature=0.07)))
