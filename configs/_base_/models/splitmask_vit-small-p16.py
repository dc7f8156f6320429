# SplitMask with ViT-S/16 (mmpretrain arch 'deit-small': 384 wide, 12 layers,
# 6 heads) at 224 px: a 14x14 patch grid split by a 50% BEiT-style block mask
# and its complement, a 2-layer decoder at 384, token cross-entropy over an
# 8192-word random-projection tokeniser (no DALL-E) and InfoNCE at t 0.2.
model = dict(
    type='SplitMask',
    split=True,
    # normalises and draws every image's split into A and B
    data_preprocessor=dict(
        type='SplitMaskPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
        mask=dict(mode='block', ratio=0.5, min_block_patches=16)),
    backbone=dict(
        type='SplitMaskViT',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        out_type='raw',
        init_cfg=[
            dict(type='TruncNormal', std=0.02, layer='Linear'),
            dict(type='TruncNormal', std=0.02, layer='Conv2d'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ]),
    neck=dict(
        type='SplitMaskDecoder',
        embed_dims=384,
        patch_resolution=14,
        num_layers=2,
        num_heads=6,
        layer_scale_init_value=0.1),
    head=dict(
        type='LossHead',
        loss=dict(
            type='SplitMaskLoss',
            embed_dims=384,
            vocab_size=8192,
            proj_dim=None,
            temperature=0.2,
            mim_weight=1.0,
            contrastive_weight=1.0)),
    target_generator=dict(
        type='SplitMaskTokenizer',
        patch_size=16,
        in_channels=3,
        vocab_size=8192,
        mode='random_projection',
        proj_dim=32,
        seed=0))
