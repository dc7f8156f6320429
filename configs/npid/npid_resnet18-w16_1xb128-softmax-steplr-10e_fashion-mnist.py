# As the NCE config, with the full non-parametric softmax over all 60k rows.
_base_ = './npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py'

model = dict(head=dict(loss=dict(mode='softmax')))
