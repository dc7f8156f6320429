# CPU-sized SplitMask: a ViT 128 wide, 4 layers, 4 heads on 1x32x32 images
# with 4x4 patches (8x8 grid), 50% block masks (blocks of >= 4 patches), a
# 2-layer decoder at 128 and a 512-word random-projection tokeniser (16-d
# patches projected to 16-d).
model = dict(
    type='SplitMask',
    split=True,
    # normalises and draws every image's split into A and B
    data_preprocessor=dict(
        type='SplitMaskPreprocessor',
        mean=[72.94],
        std=[90.02],
        mask=dict(mode='block', ratio=0.5, min_block_patches=4)),
    backbone=dict(
        type='SplitMaskViT',
        arch=dict(
            embed_dims=128,
            num_layers=4,
            num_heads=4,
            feedforward_channels=512),
        img_size=32,
        patch_size=4,
        in_channels=1,
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
        embed_dims=128,
        patch_resolution=8,
        num_layers=2,
        num_heads=4,
        layer_scale_init_value=0.1),
    head=dict(
        type='LossHead',
        loss=dict(
            type='SplitMaskLoss',
            embed_dims=128,
            vocab_size=512,
            proj_dim=None,
            temperature=0.2,
            mim_weight=1.0,
            contrastive_weight=1.0)),
    target_generator=dict(
        type='SplitMaskTokenizer',
        patch_size=4,
        in_channels=1,
        vocab_size=512,
        mode='random_projection',
        proj_dim=16,
        seed=0))
