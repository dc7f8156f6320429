"""SplitMask models: ViT subset encoding, decoder, algorithm, det transfer."""
import os

import pytest
import torch

from tests.helpers import ROOT

TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                 feedforward_channels=64)


def tiny_cfg(**kw):
    cfg = dict(
        type='SplitMask',
        data_preprocessor=dict(type='SplitMaskPreprocessor', mean=[0.],
                               std=[1.], mask=dict(min_block_patches=4)),
        backbone=dict(type='SplitMaskViT', arch=dict(TINY_ARCH), img_size=32,
                      patch_size=4, in_channels=1),
        neck=dict(type='SplitMaskDecoder', embed_dims=32, patch_resolution=8,
                  num_heads=2),
        head=dict(type='LossHead', loss=dict(type='SplitMaskLoss', embed_dims=32,
                                             vocab_size=64)),
        target_generator=dict(type='SplitMaskTokenizer', patch_size=4,
                              in_channels=1, vocab_size=64, proj_dim=8))
    cfg.update(kw)
    return cfg


def build_tiny(**kw):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')  # another test may have left mmdet's
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**kw))
    model.init_weights()
    return model


def test_loss_finite_and_logged_keys():
    model = build_tiny()
    out = model(torch.randn(4, 1, 32, 32), mode='loss')
    assert set(out) == {'loss', 'mim', 'nce', 'mim_acc'}
    assert all(torch.isfinite(v) for v in out.values())
    assert out['nce'] > 0 and out['mim'] > 0
    out['loss'].backward()
    assert model.backbone.cls_token.grad.abs().sum() > 0
    assert model.neck.mask_token.grad.abs().sum() > 0
    assert model.head.loss_module.predictor.weight.grad.abs().sum() > 0
    # only the log keys that mmengine must not sum lack 'loss'
    assert [k for k in out if 'loss' in k] == ['loss']


def test_beit_style_single_branch_option():
    model = build_tiny(split=False)
    out = model(torch.randn(4, 1, 32, 32), mode='loss')
    assert out['nce'].item() == 0.0 and out['loss'] == out['mim']


def test_encoder_output_for_a_ignores_b_pixels():
    model = build_tiny()
    enc = model.backbone
    x = torch.randn(2, 1, 32, 32, requires_grad=True)
    ids_a, ids_b = model.mask_generator(2)
    out = enc(x, ids_a)  # (B, 1 + K, C)
    assert out.shape == (2, 1 + ids_a.shape[1], 32)
    out.sum().backward()
    # per-patch gradient magnitude, (B, L)
    g = x.grad.abs().reshape(2, 8, 4, 8, 4).sum((2, 4)).reshape(2, 64)
    for b in range(2):
        assert g[b, ids_b[b]].max() == 0  # B's pixels: no influence
        assert (g[b, ids_a[b]] > 0).all()  # every pixel of A matters


def test_decoder_inpaints_all_positions():
    model = build_tiny()
    x = torch.randn(2, 1, 32, 32)
    ids_a, _ = model.mask_generator(2)
    dec = model.neck(model.backbone(x, ids_a), ids_a)
    assert dec.shape == (2, 64, 32)
    with pytest.raises(ValueError, match='do not match'):
        model.neck(model.backbone(x, ids_a), ids_a[:, :-1])


def test_image_size_not_divisible_by_patch_size():
    model = build_tiny()
    with pytest.raises(ValueError, match=r'30x32 .*patch size 4'):
        model(torch.randn(2, 1, 30, 32), mode='loss')
    with pytest.raises(ValueError, match=r'30x30 .*patch size 4x4'):
        model.backbone(torch.randn(1, 1, 30, 30))
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    with pytest.raises(ValueError, match=r'image size 30x30 .*16x16'):
        MODELS.build(dict(type='SplitMaskViT', arch=dict(TINY_ARCH),
                          img_size=30, patch_size=16))


def test_mismatched_parts_raise():
    with pytest.raises(ValueError, match='vocab_size 32 differs'):
        build_tiny(head=dict(type='LossHead', loss=dict(
            type='SplitMaskLoss', embed_dims=32, vocab_size=32)))
    with pytest.raises(ValueError, match='patch_resolution'):
        build_tiny(neck=dict(type='SplitMaskDecoder', embed_dims=32,
                             patch_resolution=7, num_heads=2))


def test_tensor_and_predict_modes():
    model = build_tiny()
    x = torch.randn(3, 1, 32, 32)
    assert model(x, mode='tensor')[0].shape == (3, 65, 32)
    samples = model(x, mode='predict')
    assert len(samples) == 3 and samples[0].feat.shape == (32, )
    full = model.backbone(x)[0][:, 1:].mean(1)
    assert torch.allclose(samples[1].feat, full[1])


def test_tokenizer_in_checkpoint_and_restored():
    model = build_tiny()
    sd = model.state_dict()
    assert 'target_generator.codebook' in sd
    assert 'target_generator.fitted' in sd
    tg = dict(type='SplitMaskTokenizer', patch_size=4, in_channels=1,
              vocab_size=64, proj_dim=8, seed=123)
    other = build_tiny(target_generator=tg)
    assert not torch.equal(other.target_generator.codebook,
                           model.target_generator.codebook)
    other.load_state_dict(sd)
    assert torch.equal(other.target_generator.codebook,
                       model.target_generator.codebook)


def test_tokenizer_checkpoint_file(tmp_path):
    from mm_instdisc.modules import SplitMaskTokenizer
    tok = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=64,
                             mode='kmeans', seed=1)
    tok.fit(torch.randn(300, 16), iters=2)
    torch.save({'state_dict': tok.state_dict()}, tmp_path / 't.pth')
    tg = dict(type='SplitMaskTokenizer', patch_size=4, in_channels=1,
              vocab_size=64, mode='kmeans')
    model = build_tiny(target_generator=tg,
                       tokenizer_checkpoint=str(tmp_path / 't.pth'))
    assert torch.equal(model.target_generator.codebook, tok.codebook)
    assert torch.isfinite(model(torch.randn(2, 1, 32, 32),
                                mode='loss')['loss'])


def test_finetune_config_layer_decay():
    import mmpretrain.engine  # noqa: F401
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/splitmask/benchmarks/'
        'vit-w128d4-p4_splitmask-pre_1xb128-coslr-20e_fashion-mnist.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {g['lr'] for g in ow.optimizer.param_groups}
    assert len(lrs) == 4 + 2  # one lr per depth: stem, 4 layers, head
    assert max(lrs) == pytest.approx(1e-3)
    assert min(lrs) == pytest.approx(1e-3 * 0.75**5)
    # the pretrained SplitMask backbone loads into the fine-tuning ViT
    sm = build_tiny(backbone=dict(
        type='SplitMaskViT', arch=dict(embed_dims=128, num_layers=4,
                                       num_heads=4, feedforward_channels=512),
        img_size=32, patch_size=4, in_channels=1, layer_scale_init_value=0.1),
        neck=dict(type='SplitMaskDecoder', embed_dims=128, patch_resolution=8,
                  num_heads=4))
    missing, unexpected = model.backbone.load_state_dict(
        sm.backbone.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {'ln2.weight', 'ln2.bias'}


def test_mask_rcnn_config_forward_loss_tiny():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/splitmask/mask-rcnn_splitmask-vit-s_fpn_coco.py'))
    assert cfg.default_scope == 'mmdet'
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.model.backbone.img_size = 64
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.in_channels = 32
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.neck).__name__ == 'SplitMaskSimpleFPN'
    img = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    ds = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                     pad_shape=(64, 64), scale_factor=(1., 1.),
                                     batch_input_shape=(64, 64)))
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 10:40, 12:50] = 1
    ds.gt_instances = InstanceData(
        bboxes=torch.tensor([[12., 10., 50., 40.]]),
        labels=torch.tensor([3]),
        masks=BitmapMasks(masks.numpy(), 64, 64))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[ds]),
                                   True)
    feats = model.extract_feat(data['inputs'])
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]
    losses = model(**data, mode='loss')
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k
                for v in (v if isinstance(v, list) else [v]))
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.patch_embed.projection.weight.grad is not None


def test_preprocessor_draws_the_split_the_model_drew_before():
    """The masks come from the data preprocessor, for the whole batch, on the
    global RNG where the model's step drew them: the same split as the
    generator drawn directly, put in the data samples, and the loss of a
    batch through the preprocessor equals the loss of the same batch given
    those ids."""
    from mmpretrain.structures import DataSample

    from mm_instdisc.modules import SplitMaskGenerator
    model = build_tiny()
    pre = model.data_preprocessor
    assert model.mask_generator is pre.mask_generator
    assert (pre.mask_generator.height, pre.mask_generator.width) == (8, 8)
    images = [torch.randint(0, 255, (1, 32, 32), dtype=torch.uint8)
              for _ in range(5)]
    data = dict(inputs=torch.stack(images),
                data_samples=[DataSample() for _ in images])
    torch.manual_seed(3)
    out = pre(data, training=True)
    torch.manual_seed(3)
    ref_a, ref_b = SplitMaskGenerator(8, mode='block', ratio=0.5,
                                      min_block_patches=4)(5)
    got_a = torch.stack([s.split_ids_a for s in out['data_samples']])
    got_b = torch.stack([s.split_ids_b for s in out['data_samples']])
    assert torch.equal(got_a, ref_a) and torch.equal(got_b, ref_b)
    # evaluation batches get no split
    assert 'split_ids_a' not in pre(data, training=False)['data_samples'][0]
    x = out['inputs'][0] if isinstance(out['inputs'], list) else out['inputs']
    torch.manual_seed(0)
    via_samples = model.loss(x, out['data_samples'])['loss']
    torch.manual_seed(0)
    from mm_instdisc.modules import splitmask_step
    direct = splitmask_step(x, model.backbone, model.neck, model.head.loss,
                            model.target_generator, model.mask_generator,
                            ids=(ref_a, ref_b))['loss']
    assert torch.equal(via_samples, direct)


def test_old_mask_arguments_name_the_preprocessor():
    with pytest.raises(TypeError, match=r"mask=dict\(mode='uniform', "
                       r"ratio=0.25\)"):
        build_tiny(mask_mode='uniform', mask_ratio=0.25)
    with pytest.raises(TypeError, match='draws its masks in the data '
                       'preprocessor'):
        build_tiny(data_preprocessor=dict(type='SelfSupDataPreprocessor'))
    with pytest.raises(ValueError, match=r'mask grid 7 differs from the '
                       r'backbone patch grid \(8, 8\)'):
        build_tiny(data_preprocessor=dict(type='SplitMaskPreprocessor',
                                          mask=dict(grid=7)))
