# CPU-sized AdCo on Fashion-MNIST with the symmetric loss.
_base_ = './adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py'

model = dict(symmetric=True)
