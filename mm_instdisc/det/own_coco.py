"""Detection on your own COCO json: the Faster R-CNN / Mask R-CNN configs
of ``configs/benchmarks/mmdetection/custom/`` filled in from the json and a
pretraining checkpoint (``mm-instdisc-det-train``).

* :func:`read_coco_json` checks a COCO json against its image folder
  (categories, image ids, boxes inside their images, segmentations when
  masks are wanted, image files and their sizes) and summarises it.
* :class:`CocoJsonDataset` is mmdet's ``CocoDataset`` that runs those checks
  and compares the config's classes with the json's categories before
  loading, and logs how many images have no boxes (kept as negatives, or
  dropped by ``filter_empty_gt=True``).
* :func:`backbone_from_checkpoint` reads the backbone of a pretraining
  checkpoint (a ResNet's type, depth, widths, input channels; a ViT's
  width, depth, heads, patch size, position-embedding grid, input channels;
  from the weights and the config the checkpoint carries), checks that the
  backbone it describes loads them exactly, and gives its config:
  pretrained, or, for the random-init baseline, the pretraining network's
  own initialisation. A ViT (SplitMask's) reaches the detector through the
  simple feature pyramid
  (:class:`~mm_instdisc.det.splitmask_fpn.SplitMaskSimpleFPN`,
  :func:`vit_feat_strides`).
* :func:`write_det_config` writes the filled-in config into the work dir,
  as :func:`mm_instdisc.own_data.write_folder_config` does for pretraining.
"""
import copy
import inspect
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from mm_instdisc.own_data import _set_var

#: --arch -> its config below configs/ (the mask config inherits the box one)
ARCH_CONFIGS: Dict[str, str] = {
    'faster-rcnn': 'benchmarks/mmdetection/custom/'
                   'faster-rcnn_r18-w32_fpn_custom',
    'mask-rcnn': 'benchmarks/mmdetection/custom/mask-rcnn_r18-w32_fpn_custom',
}
NORMS = ('bn', 'syncbn', 'frozen')
#: mmpretrain ResNets the detector configs take, with their stem's stride
RESNET_STEM_STRIDES = {'ResNet': 4, 'ResNetV1c': 4, 'ResNetV1d': 4,
                       'ResNet_CIFAR': 1}
#: keys of the pretraining config's backbone that shape or initialise it
ARCH_KEYS = ('strides', 'dilations', 'style', 'avg_down', 'deep_stem',
             'zero_init_residual', 'num_stages')
#: scale factors SplitMaskSimpleFPN takes (of a ViT's stride-patch map)
SIMPLE_FPN_SCALES = (4.0, 2.0, 1.0, 0.5)
MAX_SHORT_SIDE = 512
BOX_TOLERANCE = 1.0  # px a box may reach beyond its image (rounding)


def _first(items: Sequence, n: int = 5) -> str:
    items = list(items)
    more = f' (and {len(items) - n} more)' if len(items) > n else ''
    return f'{items[:n]}{more}'


def read_coco_json(ann_file: str, img_dir: Optional[str] = None,
                   with_mask: bool = False) -> dict:
    """Check a COCO json (and its images) and summarise it.

    Args:
        ann_file (str): The json (``images``, ``annotations``,
            ``categories``).
        img_dir (str, optional): The folder ``file_name`` is relative to;
            None skips the image checks. Defaults to None.
        with_mask (bool): Every annotation (but crowd ones) must have a
            segmentation. Defaults to False.

    Returns:
        dict: ``classes`` (category names in the json's order),
        ``num_images``, ``num_annotations``, ``num_empty`` (images without
        a non-crowd annotation), ``short_side`` (median of the images'
        shorter sides), ``channels`` (3 if an image checked is in colour,
        else 1; None without ``img_dir``).

    Raises:
        FileNotFoundError: No json; image files missing (the first named).
        ValueError: Not a COCO json, an empty or duplicated category list,
            duplicated image ids, annotations whose ``image_id`` is not an
            image or whose ``category_id`` is not a category, boxes that are
            empty or outside their image, annotations without segmentation
            (``with_mask``), image files whose size differs from the json's.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO json not found: {ann_file!r}.')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{ann_file}: not a json file ({e}).')
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(coco, dict) or
               not isinstance(coco.get(k), list)]
    if missing:
        raise ValueError(f'{ann_file}: not a COCO json, no list {missing}; '
                         "expected 'images', 'annotations' and "
                         "'categories'.")
    cats = coco['categories']
    if not cats:
        raise ValueError(
            f'{ann_file}: the category list is empty; expected "categories":'
            ' [{"id": 1, "name": "..."}, ...], one per class.')
    names = [c.get('name') for c in cats]
    cat_ids = [c.get('id') for c in cats]
    for what, values in (('names', names), ('ids', cat_ids)):
        dup = sorted({str(v) for v in values if values.count(v) > 1})
        if dup:
            raise ValueError(f'{ann_file}: duplicated category {what} {dup}; '
                             'expected one category per class.')
    images = {}
    for img in coco['images']:
        if not all(k in img for k in ('id', 'file_name', 'width', 'height')):
            raise ValueError(f'{ann_file}: image {img} lacks one of id, '
                             'file_name, width, height.')
        if img['id'] in images:
            raise ValueError(f'{ann_file}: duplicated image id '
                             f'{img["id"]!r}.')
        images[img['id']] = img
    if not images:
        raise ValueError(f'{ann_file}: the image list is empty.')
    anns = coco['annotations']
    orphans = sorted({a.get('image_id') for a in anns} - set(images),
                     key=str)
    if orphans:
        raise ValueError(
            f'{ann_file}: {len(orphans)} image_id(s) of annotations are not '
            f'ids of its images: {_first(orphans)}; the images have ids '
            f'{_first(sorted(images, key=str))}.')
    unknown = sorted({a.get('category_id') for a in anns} - set(cat_ids),
                     key=str)
    if unknown:
        raise ValueError(f'{ann_file}: category_id(s) {_first(unknown)} of '
                         f'annotations are not categories; the categories '
                         f'have ids {_first(cat_ids)}.')
    bad_boxes, no_seg, with_box = [], [], set()
    t = BOX_TOLERANCE
    for a in anns:
        img = images[a['image_id']]
        box = a.get('bbox')
        ok = isinstance(box, (list, tuple)) and len(box) == 4
        if ok:
            x, y, w, h = box
            ok = (w > 0 and h > 0 and x >= -t and y >= -t
                  and x + w <= img['width'] + t
                  and y + h <= img['height'] + t)
        if not ok:
            bad_boxes.append((a.get('id'), box, img['file_name'],
                              (img['width'], img['height'])))
        if a.get('iscrowd', 0):
            continue
        with_box.add(a['image_id'])
        if with_mask and not a.get('segmentation'):
            no_seg.append(a.get('id'))
    if bad_boxes:
        aid, box, name, size = bad_boxes[0]
        raise ValueError(
            f'{ann_file}: {len(bad_boxes)} box(es) empty or outside their '
            f'image, e.g. annotation {aid} bbox {box} in {name} of width x '
            f'height {size}; expected [x, y, w, h] with w, h > 0 inside the '
            f'image (within {t:g} px).')
    if no_seg:
        raise ValueError(
            f'{ann_file}: {len(no_seg)} annotation(s) have no segmentation, '
            f'e.g. ids {_first(no_seg)}; Mask R-CNN needs one per object '
            '(polygons or RLE). Use --arch faster-rcnn for boxes only.')
    short = [min(i['width'], i['height']) for i in images.values()]
    info = dict(classes=tuple(names), num_images=len(images),
                num_annotations=len(anns),
                num_empty=len(images) - len(with_box),
                short_side=int(np.median(short)), channels=None)
    if img_dir is not None:
        info['channels'] = _check_images(ann_file, img_dir, images.values())
    return info


def _check_images(ann_file: str, img_dir: str, images) -> int:
    """Every file exists and has the json's size; 3 if any is in colour."""
    from PIL import Image

    from mm_instdisc.datasets.image_folder import is_colour
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{ann_file}: image folder {img_dir!r} does '
                                'not exist.')
    absent, wrong, colour = [], [], False
    for img in images:
        path = osp.join(img_dir, img['file_name'])
        if not osp.isfile(path):
            absent.append(img['file_name'])
            continue
        try:
            with Image.open(path) as im:
                size, colour = im.size, colour or is_colour(im.mode)
        except Exception as e:  # noqa: B902 (PIL raises many kinds)
            raise ValueError(f'{path}: not a readable image ({e}).')
        if size != (img['width'], img['height']):
            wrong.append((img['file_name'], size,
                          (img['width'], img['height'])))
    if absent:
        raise FileNotFoundError(
            f'{ann_file}: {len(absent)} image file(s) missing below '
            f'{img_dir!r}: {_first(absent)}.')
    if wrong:
        name, size, want = wrong[0]
        raise ValueError(
            f'{ann_file}: {len(wrong)} image(s) differ in size from the '
            f'json, e.g. {name} is {size[0]}x{size[1]} but the json says '
            f'{want[0]}x{want[1]} (width x height); boxes would be wrong.')
    return 3 if colour else 1


@DATASETS.register_module()
class CocoJsonDataset(CocoDataset):
    """mmdet's ``CocoDataset`` for your own COCO json, checked first.

    Before loading, :func:`read_coco_json` checks the json and its images,
    and the config's ``metainfo['classes']`` must be the json's category
    names in the json's order (the error gives the line to set). The log
    says how many training images have no boxes and whether they are kept
    as negatives (``filter_cfg=dict(filter_empty_gt=False)``) or dropped.

    Args:
        with_mask (bool): Annotations need segmentations (Mask R-CNN).
            Defaults to False.
        check (bool): Run the checks. Defaults to True.
        **kwargs: ``CocoDataset``'s arguments.
    """

    def __init__(self, *args, with_mask: bool = False, check: bool = True,
                 **kwargs) -> None:
        if check:
            root = kwargs.get('data_root') or ''
            ann = kwargs.get('ann_file', '')
            img = (kwargs.get('data_prefix') or {}).get('img', '')
            ann, img = (p if osp.isabs(p) or not root else osp.join(root, p)
                        for p in (ann, img))
            info = read_coco_json(ann, img, with_mask=with_mask)
            have = tuple((kwargs.get('metainfo') or {}).get('classes') or ())
            if have != info['classes']:
                raise ValueError(
                    f'The config\'s classes {have} are not the categories of '
                    f'{ann} (in its order): set classes = '
                    f'{info["classes"]!r} (mm-instdisc-det-train fills them '
                    'in).')
        super().__init__(*args, **kwargs)

    def filter_data(self) -> List[dict]:
        """``CocoDataset.filter_data``, logging the images without boxes."""
        kept = super().filter_data()
        if not self.test_mode:
            empty = sum(1 for d in self.data_list if not any(
                i.get('ignore_flag', 0) == 0 for i in d['instances']))
            fcfg = self.filter_cfg or {}
            fate = ('dropped (filter_empty_gt=True)'
                    if fcfg.get('filter_empty_gt', False) else
                    'kept as negatives (filter_empty_gt=False)')
            print_log(f'{self.ann_file}: {empty} of {len(self.data_list)} '
                      f'images have no boxes: {fate}; '
                      f'{len(self.data_list) - len(kept)} images left out '
                      f'in all, {len(kept)} used.', logger='current')
        return kept


def _default_init_cfg(cls) -> Optional[list]:
    """The ``init_cfg`` default of ``cls`` (or the first base that has
    one): what a config that does not set it gets."""
    for klass in cls.__mro__:
        params = inspect.signature(klass.__init__).parameters
        if 'init_cfg' in params:
            default = params['init_cfg'].default
            if default is not inspect.Parameter.empty:
                return copy.deepcopy(default)
    return None


def vit_feat_strides(patch_size: int) -> List[int]:
    """Strides of the four pyramid levels of a ViT of ``patch_size``.

    :class:`~mm_instdisc.det.splitmask_fpn.SplitMaskSimpleFPN` scales the
    ViT's stride-``patch_size`` map by 4, 2, 1 or 0.5; the levels are those
    of its strides that are whole and at least 4 px (all four for 16 px
    patches: 4, 8, 16, 32; 2, 1, 0.5 for 8 px: 4, 8, 16), continued by
    doubling (the pyramid's stride-2 subsamplings) to four.
    """
    strides = [patch_size / s for s in SIMPLE_FPN_SCALES
               if (patch_size / s) % 1 == 0 and patch_size / s >= 4]
    if not strides:  # patches of 1 px: the coarsest scale only
        strides = [patch_size / SIMPLE_FPN_SCALES[-1]]
    strides = [int(s) for s in strides]
    while len(strides) < 4:
        strides.append(strides[-1] * 2)
    return strides[:4]


def backbone_from_checkpoint(checkpoint: str, random_init: bool = False,
                             num_heads: Optional[int] = None) -> dict:
    """The detector backbone for a pretraining checkpoint.

    The architecture comes from the weights and the config the checkpoint
    carries (:func:`mm_instdisc.pretrained_backbone.\
read_pretrained_backbone`): a ResNet's type, depth, stem and base width,
    input channels and the pretraining backbone's strides, style and
    initialisation; a ViT's (SplitMask's ``SplitMaskViT``) width, depth,
    heads, FFN, patch size, position-embedding grid, input channels and
    init (:func:`~mm_instdisc.pretrained_backbone.\
vit_backbone_config`). The backbone so described is built and must load the
    weights exactly (:func:`mm_instdisc.utils.selfsup_to_backbone.\
verify_backbone`, the converter's ``--verify``).

    Args:
        checkpoint (str): A pretraining checkpoint (``backbone.*`` keys) or
            a converted backbone file (with or without ``backbone.``).
        random_init (bool): Give the pretraining network's initialisation
            (its config's backbone ``init_cfg``, else the class's default)
            instead of the weights. Defaults to False.
        num_heads (int, optional): A ViT's attention heads (no weight shape
            holds them); None: from the checkpoint's config. Defaults to
            None.

    Returns:
        dict: ``arch`` (``'resnet'`` / ``'vit'``), ``backbone`` (config
        keys; a ResNet: ``type``, ``depth``, ``in_channels``,
        ``stem_channels``, ``base_channels``, ``init_cfg`` and the
        :data:`ARCH_KEYS` the pretraining config sets, ``zero_init_residual``
        False unless it says otherwise; a ViT: ``type``, ``arch``,
        ``img_size``, ``patch_size``, ``in_channels``, ``init_cfg`` and the
        other keys of :func:`~mm_instdisc.pretrained_backbone.\
vit_backbone_config`), ``feat_strides`` (of the four stages, or of a ViT's
        pyramid: :func:`vit_feat_strides`), ``mean`` / ``std`` (the
        pretraining normalisation, or None), ``info`` (the description).

    Raises:
        FileNotFoundError: No such file.
        ValueError: No backbone in it (the message names what it holds),
            a ResNet of a non-standard depth, a ViT whose heads are unknown,
            or weights that do not fit the backbone described.
    """
    from mmpretrain.registry import MODELS

    from mm_instdisc.pretrained_backbone import (build_verified,
                                                 read_pretrained_backbone,
                                                 vit_backbone_config)
    from mm_instdisc.utils.export import summary
    where = f'--checkpoint {checkpoint}'
    read = read_pretrained_backbone(checkpoint, num_heads)
    weights, prefix, info, cfg = (read[k] for k in ('weights', 'prefix',
                                                    'info', 'cfg'))
    if info['arch'] == 'vit':
        backbone = vit_backbone_config(info, cfg, where)
        backbone['type'] = 'mmpretrain.' + backbone['type']
        feat = vit_feat_strides(info['patch_size'])
    else:
        kind = info['type']
        if kind not in RESNET_STEM_STRIDES or info['depth'] is None:
            raise ValueError(
                f'{where}: {summary(info)}; expected an mmpretrain '
                f'{sorted(RESNET_STEM_STRIDES)} of depth 18, 34, 50, 101 or '
                '152, or a ViT (SplitMaskViT).')
        backbone = dict(type=f'mmpretrain.{kind}', depth=info['depth'],
                        in_channels=info['in_channels'],
                        stem_channels=info['stem_channels'],
                        base_channels=info['base_channels'],
                        zero_init_residual=False)
        backbone.update({k: cfg[k] for k in ARCH_KEYS if k in cfg})
        strides = backbone.get('strides', (1, 2, 2, 2))
        feat = [int(s) for s in
                RESNET_STEM_STRIDES[kind] * np.cumprod(strides)]
    build_verified(backbone, weights, where)
    if random_init:
        backbone['init_cfg'] = (
            copy.deepcopy(cfg['init_cfg']) if 'init_cfg' in cfg else
            _default_init_cfg(MODELS.get(backbone['type'].split('.')[-1])))
    else:
        backbone['init_cfg'] = dict(type='Pretrained',
                                    checkpoint=osp.abspath(checkpoint))
        if prefix:
            backbone['init_cfg']['prefix'] = prefix
    return dict(arch=info['arch'], backbone=backbone, feat_strides=feat,
                mean=read['mean'], std=read['std'], info=info)


def det_scale(short_side: int, size: Optional[int] = None,
              cap: int = MAX_SHORT_SIDE) -> Tuple[int, int]:
    """(long, short) limits of ``Resize(keep_ratio=True)``: the shorter
    side ``size``, or min(median shorter side, ``cap``), with mmdet's
    1333 / 800 ratio for the longer one."""
    short = int(size) if size else min(int(short_side), cap)
    if short < 1:
        raise ValueError(f'Illegal size {short}; expected >= 1 px.')
    return (int(round(short * 1333 / 800)), short)


def write_det_config(train_ann: str, train_images: str, val_ann: str,
                     val_images: str, checkpoint: str, work_dir: str,
                     arch: str = 'faster-rcnn', epochs: int = 12,
                     size: Optional[int] = None, seed: int = 0,
                     random_init: bool = False, batch_size: int = 2,
                     fpn_channels: int = 256, rois_per_image: int = 512,
                     roi_sampling_ratio: int = 0,
                     norm: str = 'bn', workers: int = 2,
                     num_heads: Optional[int] = None) -> str:
    """Write the detection config of ``arch`` filled in from the COCO jsons
    and the checkpoint into ``work_dir``; returns its path.

    Args:
        train_ann (str): Training COCO json.
        train_images (str): Its image folder.
        val_ann (str): Validation COCO json (box / mask AP).
        val_images (str): Its image folder.
        checkpoint (str): Pretraining checkpoint (or converted backbone):
            a ResNet, or a ViT (SplitMask's) through the simple feature
            pyramid; with ``random_init`` only its architecture is used.
        work_dir (str): Where the config is written.
        arch (str): ``'faster-rcnn'`` or ``'mask-rcnn'``. Defaults to
            ``'faster-rcnn'``.
        epochs (int): Training epochs. Defaults to 12.
        size (int, optional): Shorter side of the resized images; None:
            min(median shorter side of the training images, 512).
        seed (int): ``randomness.seed``. Defaults to 0.
        random_init (bool): The random-init baseline with the pretraining
            network's initialisation. Defaults to False.
        batch_size (int): Images per batch (SGD lr 0.02 x batch / 16; a
            ViT: AdamW lr 1e-4 x batch / 16). Defaults to 2.
        norm (str): One of :data:`NORMS` (see the config), a ResNet's BN;
            a ViT (LayerNorm) takes ``'bn'`` only. Defaults to ``'bn'``.
        workers (int): Data loader workers. Defaults to 2.
        num_heads (int, optional): A ViT's attention heads, for a
            checkpoint without its pretraining config. Defaults to None.

    Returns:
        str: The config file written (for ``mask-rcnn`` the mask config,
        whose ``_base_`` is the filled-in box config next to it).

    Raises:
        ValueError, FileNotFoundError: Bad arguments, jsons, images or
            checkpoint (:func:`read_coco_json`,
            :func:`backbone_from_checkpoint`), before anything trains.
    """
    from mm_instdisc.configs import get_config
    from mm_instdisc.pretrained_backbone import VIT_EXTRA_KEYS, vit_config_vars
    if arch not in ARCH_CONFIGS:
        raise ValueError(f'Unknown arch {arch!r}; expected one of '
                         f'{sorted(ARCH_CONFIGS)}.')
    if norm not in NORMS:
        raise ValueError(f'Illegal norm {norm!r}; expected one of {NORMS}.')
    for name, v, low in (('epochs', epochs, 1), ('batch_size', batch_size, 1),
                         ('fpn_channels', fpn_channels, 1),
                         ('rois_per_image', rois_per_image, 1),
                         ('roi_sampling_ratio', roi_sampling_ratio, 0)):
        if int(v) < low:
            raise ValueError(f'Illegal {name}: {v}; expected >= {low}.')
    with_mask = arch == 'mask-rcnn'
    train = read_coco_json(train_ann, train_images, with_mask)
    val = read_coco_json(val_ann, val_images, with_mask)
    if val['classes'] != train['classes']:
        raise ValueError(f'{val_ann} has the categories {val["classes"]}, '
                         f'{train_ann} {train["classes"]}; expected the '
                         'same, in the same order.')
    net = backbone_from_checkpoint(checkpoint, random_init, num_heads)
    backbone = net['backbone']
    is_vit = net['arch'] == 'vit'
    if is_vit and norm != 'bn':
        raise ValueError(
            f'Illegal norm {norm!r} for {checkpoint}: it holds a ViT, whose '
            "LayerNorms have no BN statistics to sync or freeze; expected "
            "'bn' (the default, which leaves a ViT as it is).")
    channels = backbone['in_channels']
    iters = int(epochs) * math.ceil(train['num_images'] / int(batch_size))
    warmup = max(1, min(500, iters // 10))  # well below the run's length
    scale = det_scale(train['short_side'], size)

    box_src = get_config(ARCH_CONFIGS['faster-rcnn'])
    with open(box_src) as f:
        text = f.read()
    for name, value in (
            ('train_ann', osp.abspath(train_ann)),
            ('train_images', osp.abspath(train_images) + '/'),
            ('val_ann', osp.abspath(val_ann)),
            ('val_images', osp.abspath(val_images) + '/'),
            ('classes', train['classes']), ('scale', scale),
            ('checkpoint', '' if random_init else osp.abspath(checkpoint)),
            ('channels', channels), ('backbone_type', backbone['type']),
            ('feat_strides', net['feat_strides']), ('norm', norm),
            ('max_epochs', int(epochs)), ('warmup_iters', warmup),
            ('batch_size', int(batch_size)), ('seed', int(seed)),
            ('fpn_channels', int(fpn_channels)),
            ('rois_per_image', int(rois_per_image)),
            ('roi_sampling_ratio', int(roi_sampling_ratio))):
        text = _set_var(text, name, value)
    if is_vit:
        arch_vars = vit_config_vars(backbone)
        arch_vars.pop('backbone_type')  # set above, with its scope
    else:
        arch_vars = {k: backbone[k] for k in ('depth', 'stem_channels',
                                              'base_channels')}
    for name, value in arch_vars.items():
        text = _set_var(text, name, value)
    if net['mean'] is not None:
        text = _set_var(text, 'mean', net['mean'])
        text = _set_var(text, 'std', net['std'])
    extra_keys = {k: backbone[k] for k in (VIT_EXTRA_KEYS if is_vit else
                                           ARCH_KEYS) if k in backbone}
    extra = [
        f'# filled in by mm-instdisc-det-train from {osp.abspath(train_ann)}'
        f' ({train["num_images"]} images, {train["num_annotations"]} '
        f'annotations, {train["num_empty"]} images without boxes) and '
        f'{osp.abspath(checkpoint)}'
        + (' (architecture only: random init)' if random_init else ''),
        f"model['backbone'].update({extra_keys!r})",
        f"model['backbone']['init_cfg'] = {backbone['init_cfg']!r}",
        f"default_hooks['logger']['interval'] = {min(50, max(1, iters))}",
    ]
    for loader in ('train_dataloader', 'val_dataloader'):
        extra.append(f"{loader}.update(num_workers={int(workers)}, "
                     f"persistent_workers={int(workers) > 0})")
    os.makedirs(work_dir, exist_ok=True)
    box_out = osp.join(work_dir, osp.basename(box_src))
    with open(box_out, 'w') as f:
        f.write(text.rstrip() + '\n\n' + '\n'.join(extra) + '\n')
    if not with_mask:
        return box_out
    mask_src = get_config(ARCH_CONFIGS['mask-rcnn'])
    with open(mask_src) as f:
        text = f.read()
    text = text.replace("_base_ = './faster-rcnn_r18-w32_fpn_custom.py'",
                        f'_base_ = {box_out!r}')
    mask_out = osp.join(work_dir, osp.basename(mask_src))
    with open(mask_out, 'w') as f:
        f.write(text)
    return mask_out
