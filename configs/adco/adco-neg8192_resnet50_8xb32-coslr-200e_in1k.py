# AdCo with 8192 negatives: lr 0.04, t 0.14, mem_t 0.03 (official README;
# linear top-1 68.4, 70.2 with the symmetric loss).
_base_ = './adco_resnet50_8xb32-coslr-200e_in1k.py'

model = dict(
    num_negatives=8192, head=dict(loss=dict(temperature=0.14, mem_temperature=0.03)))
optim_wrapper = dict(optimizer=dict(lr=0.04))
