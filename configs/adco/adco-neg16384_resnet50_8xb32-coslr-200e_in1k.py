# AdCo with 16384 negatives (official README: linear top-1 68.6, 70.2 with
# the symmetric loss); other settings as the 65536 recipe.
_base_ = './adco_resnet50_8xb32-coslr-200e_in1k.py'

model = dict(num_negatives=16384)
