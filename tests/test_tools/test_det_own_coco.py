"""Detection on your own COCO json (mm_instdisc.det.own_coco and
``mm-instdisc-det-train``): the checks, the filled-in config, one training
iteration, and the random-init baseline's initialisation."""
import glob
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers import (NPID_MODEL_CONFIG, TINY_VIT_ARCH, build_npid,
                           build_splitmask, save_selfsup_checkpoint,
                           save_splitmask_folder_checkpoint)

# a width-16 mmpretrain ResNet-18 with the folder configs' stem (7x7, RGB)
BACKBONE = dict(type='ResNet', depth=18, in_channels=3, stem_channels=16,
                base_channels=16, zero_init_residual=False)
SIZES = [(64, 48)] * 3 + [(80, 64)] * 3  # (width, height)


def write_coco(root, name='train', segm=False, **edit):
    """6 RGB images (3 of 64x48, 3 of 80x64), 2 categories, boxes only
    (``segm``: with the boxes as polygons); image 6 has no box. ``edit``
    replaces top-level keys of the json."""
    from PIL import Image
    img_dir = osp.join(root, name)
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i, (w, h) in enumerate(SIZES, start=1):
        fname = f'img{i}.png'
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                        ).save(osp.join(img_dir, fname))
        images.append(dict(id=i, file_name=fname, width=w, height=h))
        if i == 6:
            continue  # a negative
        anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1 + i % 2,
                         bbox=[4, 5, 20, 16], area=320, iscrowd=0))
        if segm:
            anns[-1]['segmentation'] = [[4, 5, 24, 5, 24, 21, 4, 21]]
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=1, name='cat'), dict(id=2, name='dog')])
    coco.update(edit)
    ann = osp.join(root, f'{name}.json')
    with open(ann, 'w') as f:
        json.dump(coco, f)
    return ann, img_dir


@pytest.fixture
def data(tmp_path):
    train = write_coco(str(tmp_path), 'train')
    val = write_coco(str(tmp_path), 'val')
    npid = build_npid(**BACKBONE)
    ckpt = save_selfsup_checkpoint(npid, tmp_path / 'npid.pth')
    return dict(train=train, val=val, ckpt=ckpt, npid=npid,
                work_dir=str(tmp_path / 'work'))


def _write(d, **kwargs):
    from mm_instdisc.det.own_coco import write_det_config
    return write_det_config(*d['train'], *d['val'], d['ckpt'],
                            d['work_dir'], **kwargs)


def test_read_coco_json_summarises(tmp_path):
    from mm_instdisc.det.own_coco import read_coco_json
    ann, img_dir = write_coco(str(tmp_path))
    info = read_coco_json(ann, img_dir)
    assert info['classes'] == ('cat', 'dog')
    assert (info['num_images'], info['num_annotations'],
            info['num_empty']) == (6, 5, 1)
    assert info['short_side'] == 56  # median of 48, 48, 48, 64, 64, 64
    assert info['channels'] == 3


def _orphan(coco):
    coco['annotations'][0]['image_id'] = 99
    return dict(annotations=coco['annotations'])


def _outside(coco):
    coco['annotations'][1]['bbox'] = [50, 40, 30, 20]  # 64x48 image
    return dict(annotations=coco['annotations'])


BAD = {
    'orphan_image_id': (_orphan, ValueError,
                        r"1 image_id\(s\) of annotations are not ids of its "
                        r"images: \[99\]"),
    'box_outside': (_outside, ValueError,
                    r'1 box\(es\) empty or outside their image, e\.g\. '
                    r'annotation 2 bbox \[50, 40, 30, 20\] in img2\.png of '
                    r'width x height \(64, 48\)'),
    'no_categories': (lambda coco: dict(categories=[]), ValueError,
                      'the category list is empty'),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_json_is_refused(tmp_path, case):
    from mm_instdisc.det.own_coco import read_coco_json
    edit, error, message = BAD[case]
    ann, _ = write_coco(str(tmp_path))
    with open(ann) as f:
        coco = json.load(f)
    ann, img_dir = write_coco(str(tmp_path), **edit(coco))
    with pytest.raises(error, match=message):
        read_coco_json(ann, img_dir)


def test_missing_images_and_segmentations_are_refused(tmp_path):
    from mm_instdisc.det.own_coco import read_coco_json
    ann, img_dir = write_coco(str(tmp_path))
    os.remove(osp.join(img_dir, 'img3.png'))
    with pytest.raises(FileNotFoundError, match=r"1 image file\(s\) missing "
                       r"below .*train'?: \['img3\.png'\]"):
        read_coco_json(ann, img_dir)
    with pytest.raises(ValueError, match=r'5 annotation\(s\) have no '
                       r'segmentation.*--arch faster-rcnn'):
        read_coco_json(ann, with_mask=True)


def test_checkpoint_without_a_backbone_is_refused(tmp_path, data):
    from mm_instdisc.det.own_coco import write_det_config

    # a ViT without its pretraining config: the heads are in no weight
    vit = save_selfsup_checkpoint(build_splitmask(), tmp_path / 'sm.pth')
    with pytest.raises(ValueError, match=r'VisionTransformer: 2 layers, '
                       r'width 32.*number of attention heads is in '
                       r'no weight shape'):
        write_det_config(*data['train'], *data['val'], vit, data['work_dir'])
    neck = tmp_path / 'neck.pth'
    torch.save(dict(state_dict={'neck.fc.weight': torch.zeros(2, 2)}), neck)
    with pytest.raises(ValueError, match=r"no backbone in it; it has 1 "
                       r"tensors under \['neck'\]"):
        write_det_config(*data['train'], *data['val'], str(neck),
                         data['work_dir'])


def test_cli_reports_bad_input_before_training(tmp_path, data):
    from mm_instdisc.cli import det_train_cli
    (train, train_dir), (val, val_dir) = data['train'], data['val']
    with pytest.raises(SystemExit, match=r'mm-instdisc-det-train: error: '
                       r"--checkpoint 'gone\.pth' does not exist"):
        det_train_cli(['--train', train, '--train-images', train_dir,
                       '--val', val, '--val-images', val_dir,
                       '--checkpoint', 'gone.pth', '--dry-run'])


def test_written_config_builds_in_mmdet_runner(data):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner
    cfg = Config.fromfile(_write(data, epochs=3, batch_size=2, seed=7,
                                 workers=0))
    assert cfg.train_dataloader.dataset.metainfo.classes == ('cat', 'dog')
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.scale == (93, 56)  # shorter side: median 56 (< 512)
    assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt is False
    assert cfg.randomness.seed == 7
    assert cfg.model.neck.in_channels == [16, 32, 64, 128]
    # 3 epochs of 3 iterations: the warm-up is shorter than the run
    assert cfg.param_scheduler[0].end == 1 < 9
    assert cfg.param_scheduler[1].milestones == [2]
    init = cfg.model.backbone.init_cfg
    assert (init.type, init.checkpoint, init.prefix) == (
        'Pretrained', osp.abspath(data['ckpt']), 'backbone.')
    cfg.work_dir = data['work_dir']
    runner = Runner.from_cfg(cfg)
    head = runner.model.roi_head.bbox_head
    assert head.fc_cls.out_features == 3  # 2 classes + background
    assert type(runner.model.backbone).__name__ == 'ResNet'
    import logging
    messages = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger, keep = MMLogger.get_current_instance(), Keep()
    logger.addHandler(keep)
    try:
        ds = DATASETS.build(cfg.train_dataloader.dataset)
    finally:
        logger.removeHandler(keep)
    assert len(ds) == 6  # the image without boxes is kept
    assert any('1 of 6 images have no boxes: kept as negatives' in m
               for m in messages), messages


def test_mask_rcnn_config_builds(tmp_path, data):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mm_instdisc.det.own_coco import write_det_config
    train = write_coco(str(tmp_path), 'mtrain', segm=True)
    val = write_coco(str(tmp_path), 'mval', segm=True)
    path = write_det_config(*train, *val, data['ckpt'], data['work_dir'],
                            arch='mask-rcnn', workers=0)
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.train_dataloader.dataset.with_mask is True
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    cfg.work_dir = data['work_dir']
    model = Runner.from_cfg(cfg).model
    assert model.roi_head.mask_head.num_classes == 2
    assert model.roi_head.bbox_head.num_classes == 2


def test_config_classes_must_be_the_jsons(data):
    from mm_instdisc.det.own_coco import CocoJsonDataset
    train, img_dir = data['train']
    with pytest.raises(ValueError, match=r"classes \('object',\) are not the "
                       r"categories of .*set classes = \('cat', 'dog'\)"):
        CocoJsonDataset(ann_file=train, data_prefix=dict(img=img_dir),
                        metainfo=dict(classes=('object', )), pipeline=[])


def _one_iteration(data, ckpt):
    """One epoch of one iteration (6 images) by the command from ``ckpt``,
    validated; the state dict it saved."""
    from mm_instdisc.cli import det_train_cli
    (train, train_dir), (val, val_dir) = data['train'], data['val']
    path = det_train_cli([
        '--train', train, '--train-images', train_dir, '--val', val,
        '--val-images', val_dir, '--checkpoint', ckpt, '--epochs', '1',
        '--batch-size', '6', '--workers', '0', '--work-dir',
        data['work_dir']])
    assert osp.isfile(path)
    logs = glob.glob(osp.join(data['work_dir'], '*', 'vis_data',
                              'scalars.json'))
    with open(logs[0]) as f:
        rows = [json.loads(line) for line in f]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    assert any('coco/bbox_mAP' in r for r in rows)  # validated too
    return torch.load(osp.join(data['work_dir'], 'epoch_1.pth'),
                      map_location='cpu', weights_only=False)['state_dict']


@pytest.mark.slow
def test_one_iteration_from_npid_checkpoint(data):
    sd = _one_iteration(data, data['ckpt'])
    # the backbone started from the checkpoint
    assert sd['backbone.conv1.weight'].shape == (16, 3, 7, 7)


def _pretraining_backbone():
    """The NPID pretraining model's backbone, freshly built (not
    initialised)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(NPID_MODEL_CONFIG)
    cfg.model.backbone.update(BACKBONE)
    cfg.model.bank_size = 8
    return MODELS.build(cfg.model).backbone


def test_random_init_uses_the_pretraining_init(data):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mm_instdisc.det  # noqa: F401
    cfg = Config.fromfile(_write(data, random_init=True))
    assert cfg.checkpoint == ''
    init = cfg.model.backbone.init_cfg
    assert [i['type'] for i in init] == ['Kaiming', 'Constant']  # ResNet's
    init_default_scope('mmdet')
    det = MODELS.build(cfg.model)
    torch.manual_seed(3)
    det.backbone.init_weights()
    pre = _pretraining_backbone()
    torch.manual_seed(3)
    pre.init_weights()
    det_sd, pre_sd = det.backbone.state_dict(), pre.state_dict()
    assert det_sd.keys() == pre_sd.keys()
    for k in pre_sd:
        assert torch.equal(det_sd[k], pre_sd[k]), k
    # not the checkpoint's weights
    npid = data['npid'].backbone.state_dict()
    assert not torch.equal(det_sd['conv1.weight'], npid['conv1.weight'])
    # mmdet's init_cfg=None would leave PyTorch's default init instead
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    plain = MODELS.build(cfg.model).backbone
    torch.manual_seed(3)
    plain.init_weights()
    assert not torch.allclose(plain.state_dict()['conv1.weight'],
                              det_sd['conv1.weight'])


# -- SplitMask's ViT through the simple feature pyramid ---------------------


@pytest.fixture
def vit(tmp_path):
    """A tiny SplitMask of the folder config (32 wide, 2 layers, 2 heads,
    8 px patches, 32 px images) saved with its config."""
    model, ckpt = save_splitmask_folder_checkpoint(tmp_path / 'splitmask.pth')
    return dict(ckpt=ckpt, backbone={k: v.clone() for k, v in
                                     model.backbone.state_dict().items()},
                cfg=torch.load(ckpt, weights_only=False)['meta']['cfg'])


def _build_detector(cfg):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import mm_instdisc.det.splitmask_fpn  # noqa: F401
    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def test_vit_checkpoint_gives_a_detector_that_loads_it_exactly(data, vit):
    from mmengine.config import Config
    cfg = Config.fromfile(_write(dict(data, ckpt=vit['ckpt']), workers=0))
    bb = cfg.model.backbone
    assert bb.type == 'mmpretrain.SplitMaskViT'
    assert dict(bb.arch) == TINY_VIT_ARCH  # the heads from the config
    assert (bb.img_size, bb.patch_size, bb.in_channels, bb.out_type) == (
        32, 8, 3, 'featmap')
    assert bb.layer_scale_init_value == 0.1  # the weights have layer scale
    assert (bb.init_cfg.type, bb.init_cfg.checkpoint, bb.init_cfg.prefix) == (
        'Pretrained', osp.abspath(vit['ckpt']), 'backbone.')
    # 8 px patches: scales 2, 1, 0.5 give strides 4, 8, 16; then 32 (and
    # RPN's 64) by subsampling
    assert cfg.feat_strides == [4, 8, 16, 32]
    assert cfg.model.neck.type == 'SplitMaskSimpleFPN'
    assert cfg.model.neck.in_channels == 32
    assert cfg.model.neck.scale_factors == [2.0, 1.0, 0.5]
    assert cfg.model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == [
        4, 8, 16, 32]
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-4 * 2 / 16)
    det = _build_detector(cfg)
    det.init_weights()
    sd = det.backbone.state_dict()
    assert sd.keys() == vit['backbone'].keys()
    for k, v in vit['backbone'].items():
        assert torch.equal(sd[k], v), k
    # a padded input of another size than the pretraining's 32 px: the
    # position embeddings are resized; the levels have the config's strides
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = det.neck(det.backbone(x))
    # (stride-2 subsampling, as mmdet's FPN: ceil(size / stride))
    assert [tuple(o.shape[-2:]) for o in outs] == [
        (math.ceil(64 / s), math.ceil(96 / s))
        for s in cfg.feat_strides + [64]]
    assert all(o.shape[1] == 256 for o in outs)


def test_vit_feat_strides_follow_the_patch_size():
    from mm_instdisc.det.own_coco import vit_feat_strides

    # reference: the whole strides p / s >= 4 of s in 4, 2, 1, 0.5, doubled
    for p, want in ((16, [4, 8, 16, 32]), (8, [4, 8, 16, 32]),
                    (4, [4, 8, 16, 32]), (32, [8, 16, 32, 64]),
                    (12, [6, 12, 24, 48]), (1, [2, 4, 8, 16])):
        assert vit_feat_strides(p) == want, p


def test_vit_mask_rcnn_config_builds(tmp_path, data, vit):
    from mmengine.config import Config

    from mm_instdisc.det.own_coco import write_det_config
    train = write_coco(str(tmp_path), 'mtrain', segm=True)
    val = write_coco(str(tmp_path), 'mval', segm=True)
    cfg = Config.fromfile(write_det_config(*train, *val, vit['ckpt'],
                                           data['work_dir'], arch='mask-rcnn',
                                           workers=0))
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.model.roi_head.mask_roi_extractor.featmap_strides == [
        4, 8, 16, 32]
    det = _build_detector(cfg)
    assert type(det.backbone).__name__ == 'SplitMaskViT'
    assert det.roi_head.mask_head.num_classes == 2


@pytest.mark.slow
def test_one_iteration_from_a_splitmask_checkpoint(data, vit):
    sd = _one_iteration(data, vit['ckpt'])
    # the fixed sin-cos position embeddings are the checkpoint's; the rest
    # one small AdamW step (lr 1e-4 x 6 / 16, warming up) away from it
    assert torch.equal(sd['backbone.pos_embed'], vit['backbone']['pos_embed'])
    w, w0 = (sd['backbone.layers.0.attn.qkv.weight'],
             vit['backbone']['layers.0.attn.qkv.weight'])
    assert not torch.equal(w, w0) and (w - w0).abs().max() < 1e-3


def test_vit_random_init_uses_the_pretraining_init(data, vit):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(_write(dict(data, ckpt=vit['ckpt']),
                                 random_init=True))
    assert cfg.checkpoint == ''
    init = cfg.model.backbone.init_cfg
    assert [i['type'] for i in init] == ['TruncNormal', 'TruncNormal',
                                         'Constant']  # the SplitMask config's
    det = _build_detector(cfg)
    torch.manual_seed(3)
    det.backbone.init_weights()
    init_default_scope('mmpretrain')
    pre = MODELS.build(Config.fromstring(vit['cfg'], '.py').model.backbone)
    torch.manual_seed(3)
    pre.init_weights()
    det_sd, pre_sd = det.backbone.state_dict(), pre.state_dict()
    assert det_sd.keys() == pre_sd.keys()
    for k in pre_sd:
        assert torch.equal(det_sd[k], pre_sd[k]), k
    # the sin-cos position embedding, not the checkpoint's weights
    assert not torch.equal(det_sd['layers.0.attn.qkv.weight'],
                           vit['backbone']['layers.0.attn.qkv.weight'])


def test_vit_refuses_bn_options(data, vit):
    with pytest.raises(ValueError, match=r"Illegal norm 'frozen' for .*holds "
                       r"a ViT.*expected 'bn'"):
        _write(dict(data, ckpt=vit['ckpt']), norm='frozen')


def test_head_sizes_are_set_and_checked(data):
    """--fpn-channels / --rois / --roi-sampling-ratio reach every head of
    the box and mask configs; mmdet's sizes are the default; bad ones are
    refused naming the value."""
    from mmengine.config import Config

    from mm_instdisc.det.own_coco import write_det_config
    default = Config.fromfile(_write(data))
    assert (default.fpn_channels, default.rois_per_image,
            default.roi_sampling_ratio) == (256, 512, 0)
    train, val = (write_coco(data['work_dir'] + '_m', s, segm=True)
                  for s in ('train', 'val'))
    cfg = Config.fromfile(write_det_config(
        *train, *val, data['ckpt'], data['work_dir'] + '_m',
        arch='mask-rcnn', fpn_channels=64, rois_per_image=128,
        roi_sampling_ratio=2))
    m = cfg.model
    assert m.neck.out_channels == m.rpn_head.in_channels == 64
    assert m.roi_head.bbox_roi_extractor.out_channels == 64
    assert m.roi_head.bbox_head.in_channels == 64
    assert m.roi_head.mask_roi_extractor.out_channels == 64
    assert m.roi_head.mask_head.in_channels == 64
    assert m.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio == 2
    assert m.roi_head.mask_roi_extractor.roi_layer.sampling_ratio == 2
    assert m.train_cfg.rcnn.sampler.num == 128
    for key, bad in (('rois_per_image', 0), ('fpn_channels', 0),
                     ('roi_sampling_ratio', -1)):
        with pytest.raises(ValueError, match=f'Illegal {key}: {bad}'):
            _write(data, **{key: bad})
