# CPU-sized SplitMask: a ViT 128 wide, 4 layers, 4 heads on 1x32x32 images
# with 4x4 patches (8x8 grid), 50% block masks (blocks of >= 4 patches), a
# 2-layer decoder at 128 and a 512-word random-projection tokeniser (16-d
# patches projected to 16-d). The rest (layer scale, drop path, init, loss
# weights, temperature) is the ViT-S/16 model's.
_base_ = './splitmask_vit-small-p16.py'

model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='SplitMaskPreprocessor',
        mean=[72.94],
        std=[90.02],
        mask=dict(mode='block', ratio=0.5, min_block_patches=4)),
    backbone=dict(
        arch=dict(
            _delete_=True,  # a dict where the base names an arch
            embed_dims=128,
            num_layers=4,
            num_heads=4,
            feedforward_channels=512),
        img_size=32,
        patch_size=4,
        in_channels=1),
    neck=dict(embed_dims=128, patch_resolution=8, num_heads=4),
    head=dict(loss=dict(embed_dims=128, vocab_size=512)),
    target_generator=dict(
        patch_size=4, in_channels=1, vocab_size=512, proj_dim=16))
