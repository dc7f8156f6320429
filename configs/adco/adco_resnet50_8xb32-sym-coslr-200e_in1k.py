# AdCo with the symmetric loss (official README: linear top-1 70.6).
_base_ = './adco_resnet50_8xb32-coslr-200e_in1k.py'

model = dict(symmetric=True)
