# Exemplar-v2 (supervised MoCo: other-class keys only as negatives) on all 60k
# Fashion-MNIST images within 15 minutes on a 2-core CPU: the MoCo v2 recipe
# (configs/mocov2/mocov2_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py:
# network, batch augmentation, bf16, queue of 8192, m 0.99) with MoCo v2's
# t 0.2, as in the Exemplar-v2 paper, plus the label filter. The log's
# neg_excluded is the share of queue keys dropped as same-class.
_base_ = '../_base_/recipes/fashion-mnist_15min_resnet18-w32s2_two-view.py'

model = dict(
    type='ExemplarMoCo',
    queue_len=8192,
    feat_dim=128,
    momentum=0.01,  # key encoder m = 0.99
    head=dict(type='LossHead', loss=dict(type='ExemplarLoss', temperature=0.2)))
