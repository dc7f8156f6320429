# NPID's baseline, the parametric softmax (paper eq. 1, Table 1), CPU-sized on
# Fashion-MNIST: the NPID config's backbone, neck (L2-normalised 128-d
# embedding), data, optimizer and schedule, but each of the 60k training
# images is a class with a learned weight vector (a 60000 x 128 parameter in
# the optimizer, weight decay included) instead of a memory bank. No
# MemoryBankHook: weighted kNN on the test set every 2 epochs against the
# training images' embeddings (KNNReferenceHook, one forward pass over the
# training set per validation).
_base_ = './npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py'

model = dict(
    _delete_=True,
    type='ParametricInstance',
    num_instances=60000,  # Fashion-MNIST train: must equal the training set
    feat_dim=128,
    # NPID's preprocessor, backbone and neck (L2-normalised 128-d embedding)
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    # Eq. 1 has no temperature (temperature=1.0). With unit embeddings and
    # W ~ N(0, 0.01^2) that leaves logits of ~0.1 and a tiny gradient to the
    # encoder; NPID's tau (0.1) is used so that only W vs bank differs.
    head=dict(type='LossHead', loss=dict(type='ParametricInstanceLoss', temperature=0.1, init_std=0.01)))

custom_hooks = [
    dict(type='KNNReferenceHook'),
]
