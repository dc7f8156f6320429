# CPU-sized AdCo: ResNet-18 (CIFAR stem) at 1/4 width on 1x28x28 images, a
# MoCo-v2 MLP neck to 128-d and 4096 adversarial negatives, with the paper's
# temperatures. Measured on 10k images (batch 64, 2-5 epochs): once the
# negatives are initialised, the batch keys take all the softmax mass at
# mem_t 0.02 (logged neg_prob ~ 0; AdCoNegativesInitHook warns), so the
# negatives get ~no gradient and only weight decay moves them. With
# head.loss.mem_temperature=0.1 they stay in play (neg_prob 0.8-0.98) but kNN was
# not better (5 epochs, k=20, backbone features: 64.0 vs 67.2 at 0.02; the
# random-init network: 77.4).
model = dict(
    type='AdCo',
    num_negatives=4096,
    feat_dim=128,
    momentum=0.01,  # key encoder m = 0.99 for short runs
    symmetric=False,
    multi_crop=False,
    negatives_init='keys',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[72.94], std=[90.02]),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=128,
        hid_channels=128,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='LossHead',
        loss=dict(
            type='AdCoLoss',
            temperature=0.12,
            mem_temperature=0.02,
            batch_negatives=True)))
