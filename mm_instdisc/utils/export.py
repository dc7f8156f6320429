"""Export the backbone of a self-supervised checkpoint to another library.

``mm-instdisc-export CKPT --to FORMAT OUT`` (:func:`export_backbone`) takes
the backbone of one of our pretraining checkpoints (mmpretrain ``ResNet``,
``ResNetV1c``, ``ResNetV1d``, ``ResNet_CIFAR`` of any depth, width, stem and
input channels; SplitMask's ``SplitMaskViT`` / mmpretrain's
``VisionTransformer``) and writes it where another library loads it:

* ``mmpretrain``: ``{'state_dict': conv1.weight, ..., 'meta': ...}``, the
  backbone's own names (the converter's ``--out-prefix none``): for
  ``backbone.load_state_dict(strict=True)`` or ``init_cfg=dict(type=
  'Pretrained', checkpoint=OUT)``.
* ``mmdet``: the same under ``backbone.`` (the converter's ``--out-prefix
  backbone.``), in mmdet's own ``ResNet`` names where they differ (deep
  stem, average-pool shortcuts: :func:`to_mmdet`): for
  ``init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.')``
  or ``load_from``.
* ``torchvision`` / ``timm``: a plain state dict (``torch.save(sd)``) in
  their names (:func:`~mm_instdisc.utils.backbone_formats.from_mmpretrain`):
  ``model.load_state_dict(sd, strict=False)`` leaves only the classifier
  missing.
* ``detectron2`` (ResNet only): the pickle that facebookresearch/moco's
  ``detection/convert-pretrain-to-detectron2.py`` writes, ``{'model':
  {name: numpy array}, '__author__': 'mm_instdisc', 'matching_heuristics':
  True}``, in detectron2's names (:func:`to_detectron2`), for
  ``MODEL.WEIGHTS OUT``.

The report (:func:`format_report`) gives the architecture found in the
weights (:func:`describe_backbone`), what the file loads into, and with
``check=True`` the missing, unexpected and mismatched keys after loading the
file into that library's own model, built to match (:func:`build_target`).
"""
import math
import os
import os.path as osp
import pickle
import re
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from .backbone_formats import _CLASSIFIER, _has_avg_down, from_mmpretrain
from .checkpoint import read_checkpoint
from .selfsup_to_backbone import (_top_level_groups, backbone_family,
                                  backbone_meta, get_state_dict,
                                  selfsup_to_backbone)

EXPORT_FORMATS = ('mmpretrain', 'mmdet', 'torchvision', 'timm', 'detectron2')
VIT_FORMATS = ('mmpretrain', 'mmdet', 'timm', 'torchvision')
# (block, blocks per stage) -> depth, as mmpretrain / torchvision / timm /
# detectron2 build them
DEPTHS = {('BasicBlock', (2, 2, 2, 2)): 18, ('BasicBlock', (3, 4, 6, 3)): 34,
          ('Bottleneck', (3, 4, 6, 3)): 50,
          ('Bottleneck', (3, 4, 23, 3)): 101,
          ('Bottleneck', (3, 8, 36, 3)): 152}
_LAYER_BLOCK = re.compile(r'^layer(\d+)\.(\d+)\.')


def _check_to(to: str) -> None:
    if to not in EXPORT_FORMATS:
        raise ValueError(f'Illegal --to {to!r}; expected one of '
                         f'{EXPORT_FORMATS}.')


# ---------------------------------------------------------------- describe
def checkpoint_model_cfg(ckpt: dict) -> Optional[dict]:
    """``model`` of the config an mmengine checkpoint carries
    (``meta['cfg']``, the text mmengine's Runner saves), or None."""
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return None
    try:
        from mmengine.config import Config
        model = Config.fromstring(text, file_format='.py').model
    except (ImportError, SyntaxError, NameError, AttributeError, KeyError,
            TypeError, ValueError, OSError):
        return None  # optional information: the weights say the rest
    return model.to_dict() if hasattr(model, 'to_dict') else dict(model)


def _cfg_backbone(ckpt: dict, src_prefix: str) -> Optional[dict]:
    """``model.backbone`` of the config an mmengine checkpoint carries, or
    None."""
    if src_prefix != 'backbone.':
        return None
    model = checkpoint_model_cfg(ckpt)
    backbone = model.get('backbone') if model else None
    return dict(backbone) if isinstance(backbone, dict) else None


def _cfg_num_heads(cfg: Optional[dict]) -> Optional[int]:
    if not cfg:
        return None
    arch = cfg.get('arch', 'base')  # VisionTransformer's default arch
    if isinstance(arch, dict):
        return arch.get('num_heads')
    try:
        from mmpretrain.models import VisionTransformer
    except ImportError:
        return None
    zoo = VisionTransformer.arch_zoo.get(str(arch).lower())
    return zoo.get('num_heads') if zoo else None


def describe_backbone(weights: Dict[str, Tensor],
                      cfg: Optional[dict] = None,
                      num_heads: Optional[int] = None) -> dict:
    """The architecture of mmpretrain backbone weights, from their shapes.

    Args:
        weights (dict[str, Tensor]): Backbone weights without prefix
            (``conv1.weight`` / ``stem.0.conv.weight`` ..., or
            ``patch_embed.projection.weight`` ...).
        cfg (dict, optional): The backbone's config, when the checkpoint has
            one: its ``type`` is reported, and a ViT's ``num_heads`` (which
            no weight shape holds) is taken from it. Defaults to None.
        num_heads (int, optional): A ViT's heads, given by the user; wins
            over ``cfg`` (whose heads are used only if they divide the
            width of the weights). Defaults to None.

    Returns:
        dict: ``arch`` (``'resnet'`` / ``'vit'``) and ``type`` (the
        mmpretrain class: ``ResNet``, ``ResNetV1c``, ``ResNetV1d``,
        ``ResNet_CIFAR``, ``VisionTransformer``, or the config's, e.g.
        ``SplitMaskViT``). A ResNet: ``block``, ``stage_blocks``, ``depth``
        (None for other block counts), ``in_channels``, ``stem_channels``,
        ``stem_kernel`` (7, or 3 for the CIFAR stem; None for the deep
        stem), ``base_channels``, ``deep_stem``, ``avg_down``. A ViT:
        ``embed_dims``, ``num_layers``, ``num_heads`` (None when unknown)
        and ``num_heads_from`` (``'argument'`` / ``'config'`` / None),
        ``feedforward_channels``, ``patch_size``, ``in_channels``,
        ``img_size`` (None for a non-square grid), ``with_cls_token``,
        ``qkv_bias``, ``layer_scale``, ``final_norm`` (``ln1``),
        ``avg_norm`` (``ln2``), ``pre_norm``.

    Raises:
        ValueError: Neither a ResNet nor a ViT (the message names the key
            groups there are); ``num_heads`` does not divide the width.
    """
    family = backbone_family(weights)
    cfg_type = (cfg or {}).get('type')
    if isinstance(cfg_type, str):
        cfg_type = cfg_type.split('.')[-1]
    if family == 'resnet':
        return _describe_resnet(weights, cfg_type)
    if family == 'vit':
        return _describe_vit(weights, cfg, cfg_type, num_heads)
    raise ValueError(
        f'No ResNet or ViT backbone in these weights: {len(weights)} tensors '
        f'under {_top_level_groups(weights)}. Expected mmpretrain ResNet keys '
        '(conv1 / stem.*, layer1.0.conv1, ...) or VisionTransformer keys '
        '(patch_embed.projection, layers.N.attn, ...).')


def _describe_resnet(sd: Dict[str, Tensor], cfg_type: Optional[str]) -> dict:
    blocks: Dict[int, set] = {}
    for k in sd:
        m = _LAYER_BLOCK.match(k)
        if m:
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    stage_blocks = tuple(len(blocks[s]) for s in sorted(blocks))
    block = 'Bottleneck' if 'layer1.0.conv3.weight' in sd else 'BasicBlock'
    deep = 'stem.0.conv.weight' in sd
    avg = _has_avg_down(sd)
    if deep:
        first, last = sd['stem.0.conv.weight'], sd['stem.2.conv.weight']
        in_channels, stem, kernel = first.shape[1], last.shape[0], None
    else:
        conv1 = sd['conv1.weight']
        in_channels, stem, kernel = (conv1.shape[1], conv1.shape[0],
                                     conv1.shape[-1])
    if deep:
        inferred = 'ResNetV1d' if avg else 'ResNetV1c'
    else:
        inferred = 'ResNet_CIFAR' if kernel == 3 else 'ResNet'
    return dict(arch='resnet', type=cfg_type or inferred, block=block,
                stage_blocks=stage_blocks,
                depth=DEPTHS.get((block, stage_blocks)),
                in_channels=int(in_channels), stem_channels=int(stem),
                stem_kernel=None if kernel is None else int(kernel),
                base_channels=int(sd['layer1.0.conv1.weight'].shape[0]),
                deep_stem=deep, avg_down=avg)


def _describe_vit(sd: Dict[str, Tensor], cfg: Optional[dict],
                  cfg_type: Optional[str], num_heads: Optional[int]) -> dict:
    proj = sd['patch_embed.projection.weight']
    embed = int(proj.shape[0])
    layers = {int(k.split('.')[1]) for k in sd if k.startswith('layers.')}
    with_cls = 'cls_token' in sd
    img_size = None
    if 'pos_embed' in sd:
        patches = sd['pos_embed'].shape[1] - int(with_cls)
        grid = math.isqrt(patches)
        if grid * grid == patches and proj.shape[-1] == proj.shape[-2]:
            img_size = grid * int(proj.shape[-1])
    if num_heads is not None:
        heads_from = 'argument'
        if num_heads < 1 or embed % num_heads:
            raise ValueError(
                f'Illegal num_heads {num_heads}: expected a divisor of the '
                f'embedding width {embed} of these weights.')
    else:
        # a config of another width (not these weights') is no help
        num_heads = _cfg_num_heads(cfg)
        if not isinstance(num_heads, int) or embed % num_heads:
            num_heads = None
        heads_from = 'config' if num_heads is not None else None
    return dict(
        arch='vit', type=cfg_type or 'VisionTransformer', embed_dims=embed,
        num_layers=len(layers), num_heads=num_heads,
        num_heads_from=heads_from,
        feedforward_channels=int(sd['layers.0.ffn.layers.0.0.weight'].shape[0]),
        patch_size=int(proj.shape[-1]), in_channels=int(proj.shape[1]),
        img_size=img_size, with_cls_token=with_cls,
        qkv_bias='layers.0.attn.qkv.bias' in sd,
        layer_scale='layers.0.attn.gamma1.weight' in sd,
        final_norm='ln1.weight' in sd, avg_norm='ln2.weight' in sd,
        pre_norm='pre_norm.weight' in sd)


def summary(info: dict) -> str:
    """One line on a :func:`describe_backbone` result."""
    if info['arch'] == 'resnet':
        depth = (f"depth {info['depth']}" if info['depth'] else
                 'non-standard depth')
        stem = ('deep stem (3 convs)' if info['deep_stem'] else
                f"{info['stem_kernel']}x{info['stem_kernel']} stem")
        return (f"{info['type']} {depth} ({info['block']}, stage blocks "
                f"{list(info['stage_blocks'])}), {info['in_channels']} input "
                f"channels, {stem} of {info['stem_channels']}, base width "
                f"{info['base_channels']}"
                + (', average-pool shortcuts' if info['avg_down'] else ''))
    heads = (f"{info['num_heads']} heads ({info['num_heads_from']})"
             if info['num_heads'] else 'heads unknown (not in the weights)')
    extras = [name for name, on in (
        ('class token', info['with_cls_token']),
        ('layer scale', info['layer_scale']), ('pre-norm', info['pre_norm']),
        ('final norm ln1', info['final_norm']),
        ('pooled-token norm ln2', info['avg_norm'])) if on]
    size = (f"{info['img_size']}x{info['img_size']} images"
            if info['img_size'] else 'non-square patch grid')
    return (f"{info['type']}: {info['num_layers']} layers, width "
            f"{info['embed_dims']}, {heads}, FFN "
            f"{info['feedforward_channels']}, {info['patch_size']}x"
            f"{info['patch_size']} patches of {info['in_channels']} "
            f"channels, {size}; " + ', '.join(extras))


# -------------------------------------------------------------- detectron2
def to_detectron2(weights: Dict[str, Tensor]) -> 'OrderedDict[str, object]':
    """mmpretrain ResNet weights in detectron2's names, as numpy arrays.

    torchvision / mmpretrain -> detectron2 (as facebookresearch/moco's
    ``convert-pretrain-to-detectron2.py``): ``conv1`` / ``bn1`` ->
    ``stem.conv1`` / ``stem.conv1.norm``; ``layerN`` -> ``res{N+1}``;
    ``bnK`` -> ``convK.norm``; ``downsample.0`` / ``downsample.1`` ->
    ``shortcut`` / ``shortcut.norm``. BN's ``num_batches_tracked`` counters
    are left out (detectron2's frozen BN has none; they are no weights).

    detectron2's ResNet has a 7x7 ``BasicStem`` and convolution shortcuts;
    build it with ``MODEL.RESNETS.STRIDE_IN_1X1 False`` (mmpretrain's
    default ``style='pytorch'`` strides the 3x3 conv), ``DEPTH``,
    ``STEM_OUT_CHANNELS`` and ``RES2_OUT_CHANNELS`` of the weights, and
    ``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` (one value per input channel) of
    the pretraining.

    Args:
        weights (dict[str, Tensor]): ResNet weights without prefix.

    Returns:
        OrderedDict[str, numpy.ndarray]: detectron2 names -> arrays.

    Raises:
        ValueError: A ViT; a deep stem (``ResNetV1c`` / ``ResNetV1d``) or
            average-pool shortcuts, which detectron2's ResNet has not; keys
            of no plain ResNet (named).
    """
    family = backbone_family(weights)
    if family != 'resnet':
        raise ValueError(
            f'detectron2 export is for ResNets only; these weights are a '
            f'{family} backbone. A ViT exports to {VIT_FORMATS} '
            '(torchvision only without layer scale, pre-norm or ln2).')
    if any(k.startswith('stem.') for k in weights):
        raise ValueError(
            'This ResNet has a deep stem (stem.* keys: ResNetV1c / ResNetV1d, '
            "deep_stem=True), which detectron2's ResNet (BasicStem: one 7x7 "
            'conv) has not; export it to mmpretrain, mmdet or timm.')
    if _has_avg_down(weights):
        raise ValueError(
            'This ResNet has average-pool shortcuts (downsample.2.* keys: '
            "avg_down=True), which detectron2's ResNet has not; export it to "
            'mmpretrain, mmdet or timm.')
    with warnings.catch_warnings():
        # the conv1 warning is torchvision's; export_backbone adds
        # detectron2's own note
        warnings.simplefilter('ignore', UserWarning)
        tv = from_mmpretrain(weights, 'torchvision', 'resnet')
    out: 'OrderedDict[str, object]' = OrderedDict()
    for k, v in tv.items():
        if k.endswith('.num_batches_tracked'):
            continue
        if k.startswith(('conv1.', 'bn1.')):
            k = 'stem.' + k
        k = re.sub(r'^layer(\d+)\.', lambda m: f'res{int(m[1]) + 1}.', k)
        k = re.sub(r'(^|\.)bn([123])\.', r'\1conv\2.norm.', k)
        k = k.replace('.downsample.0.', '.shortcut.')
        k = k.replace('.downsample.1.', '.shortcut.norm.')
        v = v.detach().cpu()
        if v.dtype in (torch.bfloat16, torch.float16):
            v = v.float()
        out[k] = v.numpy()
    return out


# ------------------------------------------------------------------- mmdet
def to_mmdet(weights: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """mmpretrain backbone weights in mmdet's own ``ResNet`` names.

    A plain-stem ResNet without average-pool shortcuts and a ViT (which
    mmdet configs build as ``mmpretrain.VisionTransformer`` /
    ``mmpretrain.SplitMaskViT``) have the same names in both. mmdet's
    ``ResNet(deep_stem=True)`` (``ResNetV1c`` / ``ResNetV1d``) keeps its
    stem in one ``Sequential`` (conv, bn, relu x3: ``stem.{0,1,3,4,6,7}``,
    mmpretrain: ``stem.{0,1,2}.{conv,bn}``), and with ``avg_down`` puts an
    average pool at index 0 of every shortcut, stride 1 too (mmpretrain
    only where the stride is 2): timm's layout
    (:func:`~mm_instdisc.utils.backbone_formats.from_mmpretrain`), with
    timm's stem ``conv1.N`` / ``bn1`` at mmdet's ``stem.N`` / ``stem.7``.

    Args:
        weights (dict[str, Tensor]): Backbone weights without prefix.

    Returns:
        OrderedDict[str, Tensor]: The weights in mmdet's names, no prefix.
    """
    deep = any(k.startswith('stem.') for k in weights)
    if backbone_family(weights) != 'resnet' or not (
            deep or _has_avg_down(weights)):
        return OrderedDict(weights)
    with warnings.catch_warnings():  # timm's conv1 notes do not apply
        warnings.simplefilter('ignore', UserWarning)
        timm_sd = from_mmpretrain(weights, 'timm', 'resnet')
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for k, v in timm_sd.items():
        if deep:
            k = re.sub(r'^conv1\.(\d)\.', r'stem.\1.', k)
            k = re.sub(r'^bn1\.', 'stem.7.', k)
        out[k] = v
    return out


# ------------------------------------------------------------ target models
def _resnet_layers(info: dict) -> List[int]:
    if len(info['stage_blocks']) != 4:
        raise ValueError(
            f"a ResNet of {len(info['stage_blocks'])} stages (the libraries' "
            'ResNets have 4)')
    return list(info['stage_blocks'])


def _require_depth(info: dict, library: str) -> int:
    if info['depth'] is None:
        raise ValueError(
            f"{library} builds ResNets of depth 18/34/50/101/152 only; these "
            f"weights have {info['block']}s {list(info['stage_blocks'])}")
    return info['depth']


def _torchvision_resnet(info: dict) -> nn.Module:
    """torchvision's ResNet; other stems, widths or input channels rebuilt
    with torchvision's own blocks (its constructor fixes 3 channels, a 7x7
    stem of 64 and widths 64-512)."""
    from torchvision.models import resnet as tvr
    if info['deep_stem'] or info['avg_down']:
        raise ValueError("torchvision's ResNet has no deep stem or "
                         'average-pool shortcuts')
    block = getattr(tvr, info['block'])
    layers = _resnet_layers(info)
    model = tvr.ResNet(block, layers)
    stem, base = info['stem_channels'], info['base_channels']
    if (info['in_channels'], stem, base, info['stem_kernel']) == (3, 64, 64,
                                                                  7):
        return model
    k = info['stem_kernel']
    model.conv1 = nn.Conv2d(info['in_channels'], stem, k,
                            stride=2 if k == 7 else 1, padding=k // 2,
                            bias=False)
    model.bn1 = nn.BatchNorm2d(stem)
    if k == 3:  # ResNet_CIFAR: no max-pool
        model.maxpool = nn.Identity()
    model.inplanes = stem
    for i, n in enumerate(layers):
        setattr(model, f'layer{i + 1}',
                model._make_layer(block, base * 2**i, n,
                                  stride=1 if i == 0 else 2))
    model.fc = nn.Linear(base * 8 * block.expansion, 1000)
    return model


def _timm_resnet(info: dict) -> nn.Module:
    """timm's ResNet (``stem_type='deep'``, ``avg_down`` for V1c / V1d);
    a plain stem of other than 64 channels or the CIFAR stem replaced."""
    from timm.models import resnet as tr
    block = getattr(tr, info['block'])
    base, stem = info['base_channels'], info['stem_channels']
    plain_64 = not info['deep_stem'] and stem == 64
    if not info['deep_stem'] and stem % 2:
        raise ValueError(f'timm ResNets with an odd stem width ({stem})')
    model = tr.ResNet(block, _resnet_layers(info),
                      in_chans=info['in_channels'], stem_width=stem // 2,
                      stem_type='' if plain_64 else 'deep',
                      avg_down=info['avg_down'],
                      channels=tuple(base * 2**i for i in range(4)))
    if not info['deep_stem']:
        k = info['stem_kernel']
        if not plain_64 or k != 7:
            model.conv1 = nn.Conv2d(info['in_channels'], stem, k,
                                    stride=2 if k == 7 else 1,
                                    padding=k // 2, bias=False)
        if k == 3:
            model.maxpool = nn.Identity()
    return model


def _mm_resnet_kwargs(info: dict, library: str = 'mmpretrain') -> dict:
    """``type`` (mmpretrain's class) and arguments of the ResNet."""
    kwargs = dict(depth=_require_depth(info, library),
                  in_channels=info['in_channels'],
                  stem_channels=info['stem_channels'],
                  base_channels=info['base_channels'])
    if info['deep_stem']:
        return dict(type='ResNetV1d' if info['avg_down'] else 'ResNetV1c',
                    **kwargs)
    if info['stem_kernel'] == 3:
        return dict(type='ResNet_CIFAR', **kwargs)
    if info['avg_down']:
        kwargs['avg_down'] = True
    return dict(type='ResNet', **kwargs)


def _mmdet_resnet_kwargs(info: dict) -> dict:
    """mmdet's ResNet arguments (its deep_stem / avg_down flags)."""
    kwargs = _mm_resnet_kwargs(info, 'mmdet')
    kwargs.pop('type')
    kwargs.update(deep_stem=info['deep_stem'], avg_down=info['avg_down'])
    return kwargs


def _check_heads(info: dict) -> int:
    """Heads for a check model: the known ones, else 1 (no weight shape
    depends on the heads)."""
    return info['num_heads'] or 1


def _mm_vit_kwargs(info: dict, num_heads) -> dict:
    if info['img_size'] is None:
        raise ValueError('a ViT of a non-square patch grid')
    return dict(
        arch=dict(embed_dims=info['embed_dims'],
                  num_layers=info['num_layers'], num_heads=num_heads,
                  feedforward_channels=info['feedforward_channels']),
        img_size=info['img_size'], patch_size=info['patch_size'],
        in_channels=info['in_channels'], qkv_bias=info['qkv_bias'],
        final_norm=info['final_norm'],
        out_type='avg_featmap' if info['avg_norm'] else 'raw',
        with_cls_token=info['with_cls_token'],
        layer_scale_init_value=0.1 if info['layer_scale'] else 0.,
        pre_norm=info['pre_norm'])


def _mm_vit(info: dict) -> nn.Module:
    from mmpretrain.models import VisionTransformer
    return VisionTransformer(**_mm_vit_kwargs(info, _check_heads(info)))


def _timm_vit(info: dict) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer
    if info['img_size'] is None:
        raise ValueError('a ViT of a non-square patch grid')
    cls = info['with_cls_token']
    return VisionTransformer(
        img_size=info['img_size'], patch_size=info['patch_size'],
        in_chans=info['in_channels'], embed_dim=info['embed_dims'],
        depth=info['num_layers'], num_heads=_check_heads(info),
        mlp_ratio=info['feedforward_channels'] / info['embed_dims'],
        qkv_bias=info['qkv_bias'],
        init_values=0.1 if info['layer_scale'] else None, class_token=cls,
        global_pool='avg' if info['avg_norm'] or not cls else 'token',
        fc_norm=info['avg_norm'],
        final_norm=info['final_norm'] or info['avg_norm'],
        pre_norm=info['pre_norm'])


def _torchvision_vit(info: dict) -> nn.Module:
    from torchvision.models import VisionTransformer
    if info['img_size'] is None:
        raise ValueError('a ViT of a non-square patch grid')
    model = VisionTransformer(
        image_size=info['img_size'], patch_size=info['patch_size'],
        num_layers=info['num_layers'], num_heads=_check_heads(info),
        hidden_dim=info['embed_dims'],
        mlp_dim=info['feedforward_channels'])
    if info['in_channels'] != 3:
        model.conv_proj = nn.Conv2d(info['in_channels'], info['embed_dims'],
                                    info['patch_size'], info['patch_size'])
    return model


def build_target(to: str, info: dict) -> nn.Module:
    """The model of library ``to`` that exported weights of the
    architecture ``info`` (:func:`describe_backbone`) load into.

    * ``torchvision``: ``torchvision.models.resnet.ResNet`` (a 3-channel 7x7
      stem of 64 and widths 64-512 as its constructor builds them; other
      stems, input channels and widths rebuilt from torchvision's own
      blocks and ``_make_layer``, a CIFAR stem without max-pool) or
      ``torchvision.models.VisionTransformer``.
    * ``timm``: ``timm.models.resnet.ResNet`` (``stem_type='deep'`` for the
      deep stem, ``avg_down``, ``channels`` of the widths; a plain stem of
      other than 64 channels replaced) or ``timm``'s ``VisionTransformer``.
    * ``mmpretrain``: ``ResNet`` / ``ResNetV1c`` / ``ResNetV1d`` /
      ``ResNet_CIFAR`` or ``VisionTransformer``.
    * ``mmdet``: ``mmdet.models.backbones.ResNet`` (``deep_stem`` /
      ``avg_down``); a CIFAR-stem ResNet or a ViT as mmdet configs build
      them, ``mmpretrain.ResNet_CIFAR`` / ``mmpretrain.VisionTransformer``.

    A ViT's heads (no weight shape holds them) are ``info['num_heads']``,
    or 1 when unknown: the weight names and shapes are the same.

    Raises:
        ImportError: The library is not installed.
        ValueError: ``detectron2`` (not on PyPI: no model to build), or an
            architecture the library's model cannot take (the message says
            which).
    """
    _check_to(to)
    if to == 'detectron2':
        raise ValueError('detectron2 is not on PyPI: no model is built to '
                         'check its export')
    if info['arch'] == 'vit':
        if to in ('mmpretrain', 'mmdet'):
            return _mm_vit(info)
        return _timm_vit(info) if to == 'timm' else _torchvision_vit(info)
    if to == 'torchvision':
        return _torchvision_resnet(info)
    if to == 'timm':
        return _timm_resnet(info)
    if to == 'mmdet' and info['stem_kernel'] != 3:
        from mmdet.models.backbones import ResNet
        return ResNet(**_mmdet_resnet_kwargs(info))
    import mmpretrain.models as mm_models
    kwargs = _mm_resnet_kwargs(info)
    return getattr(mm_models, kwargs.pop('type'))(**kwargs)


def target_description(to: str, info: dict) -> str:
    """What the exported file loads into, for the report."""
    if to == 'detectron2':
        expansion = 4 if info['block'] == 'Bottleneck' else 1
        return (f"detectron2 ResNet: MODEL.WEIGHTS OUT, MODEL.RESNETS.DEPTH "
                f"{info['depth'] or '?'}, STEM_OUT_CHANNELS "
                f"{info['stem_channels']}, RES2_OUT_CHANNELS "
                f"{info['base_channels'] * expansion}, STRIDE_IN_1X1 False, "
                f"MODEL.PIXEL_MEAN / PIXEL_STD with {info['in_channels']} "
                'values (those of the pretraining)')
    if info['arch'] == 'vit':
        if to in ('mmpretrain', 'mmdet'):
            kw = (_mm_vit_kwargs(info, info['num_heads'] or '?')
                  if info['img_size'] else {})
            if to == 'mmdet':
                return (f"mmpretrain.VisionTransformer({_kw(kw)}) (or "
                        "mmpretrain.SplitMaskViT) as an mmdet config's "
                        "backbone, init_cfg=dict(type='Pretrained', "
                        "checkpoint=OUT, prefix='backbone.')")
            return (f'mmpretrain.models.VisionTransformer({_kw(kw)}) (or '
                    'SplitMaskViT)')
        if to == 'timm':
            return ('timm.models.vision_transformer.VisionTransformer('
                    f"img_size={info['img_size']}, "
                    f"patch_size={info['patch_size']}, "
                    f"in_chans={info['in_channels']}, "
                    f"embed_dim={info['embed_dims']}, "
                    f"depth={info['num_layers']}, "
                    f"num_heads={info['num_heads'] or 'N'}, mlp_ratio="
                    f"{info['feedforward_channels'] / info['embed_dims']:g}"
                    + (', init_values=...' if info['layer_scale'] else '')
                    + (", global_pool='avg'" if info['avg_norm'] else '')
                    + ')')
        return ('torchvision.models.VisionTransformer(image_size='
                f"{info['img_size']}, patch_size={info['patch_size']}, "
                f"num_layers={info['num_layers']}, "
                f"num_heads={info['num_heads'] or 'N'}, "
                f"hidden_dim={info['embed_dims']}, "
                f"mlp_dim={info['feedforward_channels']})")
    layers = list(info['stage_blocks'])
    if to in ('mmpretrain', 'mmdet'):
        cifar = info['stem_kernel'] == 3
        try:
            kw = (_mmdet_resnet_kwargs(info) if to == 'mmdet' and not cifar
                  else _mm_resnet_kwargs(info))
        except ValueError:  # no standard depth
            kw = dict(stage_blocks=layers)
        kind = kw.pop('type', 'ResNet')
        if to == 'mmdet':
            lib = 'mmpretrain.ResNet_CIFAR' if cifar else 'mmdet ResNet'
            return (f"{lib}({_kw(kw)}) in an mmdet config, init_cfg=dict("
                    "type='Pretrained', checkpoint=OUT, prefix='backbone.')")
        return f'mmpretrain.models.{kind}({_kw(kw)})'
    if to == 'torchvision':
        std = (info['in_channels'], info['stem_channels'],
               info['base_channels'], info['stem_kernel']) == (3, 64, 64, 7)
        if std and info['depth']:
            return f"torchvision.models.resnet{info['depth']}(weights=None)"
        return (f"torchvision.models.resnet.ResNet({info['block']}, {layers})"
                + ('' if std else
                   f" with conv1 = Conv2d({info['in_channels']}, "
                   f"{info['stem_channels']}, {info['stem_kernel']}, "
                   f"stride={2 if info['stem_kernel'] == 7 else 1}), "
                   + ('maxpool = Identity(), '
                      if info['stem_kernel'] == 3 else '')
                   + 'layers rebuilt with widths '
                   f"{[info['base_channels'] * 2**i for i in range(4)]} "
                   '(mm_instdisc.utils.export.build_target)'))
    base = info['base_channels']
    return (f"timm.models.resnet.ResNet({info['block']}, {layers}, in_chans="
            f"{info['in_channels']}, channels="
            f"{tuple(base * 2**i for i in range(4))}"
            + (f", stem_type='deep', stem_width={info['stem_channels'] // 2}"
               if info['deep_stem'] else '')
            + (', avg_down=True' if info['avg_down'] else '') + ')'
            + ('' if info['deep_stem'] or (info['stem_channels'], info[
                'stem_kernel']) == (64, 7) else
               ' with conv1 / maxpool replaced as in '
               'mm_instdisc.utils.export.build_target'))


def _kw(kwargs: dict) -> str:
    return ', '.join(f'{k}={v!r}' for k, v in kwargs.items())


# ------------------------------------------------------------------ checks
def check_export(path: str, to: str, info: dict) -> dict:
    """Load an exported file into the target library's model.

    Reads ``path`` back as that library would (``torch.load(...,
    weights_only=True)``: :func:`read_checkpoint` with ``tensors_only``;
    mmpretrain / mmdet files: their ``state_dict``,
    mmdet's less the ``backbone.`` prefix), builds the model
    (:func:`build_target`) and compares names and shapes, then loads the
    weights with ``strict=False`` when no shape differs.

    Returns:
        dict: ``library``, ``model`` (its class), ``missing`` (model keys
        the file lacks), ``unexpected`` (file keys the model lacks),
        ``mismatched`` (``(key, file shape, model shape)``), ``classifier``
        (the missing keys that are the classifier, which is no backbone
        part), ``ok`` (nothing else missing, unexpected or mismatched);
        or ``skipped`` (why no check was made: library not installed,
        detectron2, an architecture its model cannot take).
    """
    lib = to
    try:
        model = build_target(to, info)
    except ImportError as e:
        return dict(library=lib, skipped=f'{lib} is not installed ({e})')
    except ValueError as e:
        return dict(library=lib, skipped=f'no {lib} model to check: {e}')
    state = read_checkpoint(path, tensors_only=True)
    if to in ('mmpretrain', 'mmdet'):
        state = state['state_dict']
        if to == 'mmdet':
            state = selfsup_to_backbone(state, 'backbone.')
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mismatched = [(k, tuple(state[k].shape), tuple(target[k].shape))
                  for k in state
                  if k in target and state[k].shape != target[k].shape]
    if not mismatched:
        model.load_state_dict(state, strict=False)
    heads = _CLASSIFIER.get((info['arch'], to), ())
    classifier = [k for k in missing if k.startswith(heads)] if heads else []
    ok = not (unexpected or mismatched) and len(classifier) == len(missing)
    return dict(library=lib, model=type(model).__module__ + '.' +
                type(model).__name__, missing=missing, unexpected=unexpected,
                mismatched=mismatched, classifier=classifier, ok=ok)


# ------------------------------------------------------------------ export
def _source_weights(ckpt: dict, src_prefix: str) -> Dict[str, Tensor]:
    """The backbone weights (no prefix) of a checkpoint: the keys under
    ``src_prefix``, or a file that is a bare mmpretrain backbone already."""
    state = get_state_dict(ckpt)
    bare = not any(k.startswith(src_prefix) for k in state)
    if bare and src_prefix == 'backbone.' and backbone_family(
            state) != 'unknown':
        state = OrderedDict(('backbone.' + k, v) for k, v in state.items())
    try:
        return selfsup_to_backbone(state, src_prefix)
    except ValueError as e:
        raise ValueError(
            f'{e} (mm-instdisc-convert SRC --list-prefixes lists the '
            'module prefixes with their tensor counts).') from None


def _makedirs(path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)


def export_backbone(ckpt: str, to: str, out: str,
                    src_prefix: str = 'backbone.', check: bool = False,
                    num_heads: Optional[int] = None) -> dict:
    """Write the backbone of a checkpoint in another library's format.

    Args:
        ckpt (str): A self-supervised checkpoint of ours (mmengine ``.pth``:
            ``backbone.*`` among neck, head, memory bank ...), an mmpretrain
            classifier checkpoint, or bare mmpretrain backbone weights (the
            converter's output).
        to (str): ``'mmpretrain'``, ``'mmdet'``, ``'torchvision'``,
            ``'timm'`` or ``'detectron2'`` (module docstring: what each
            writes and loads into).
        out (str): The file to write (folders are created); not ``ckpt``.
        src_prefix (str): The module whose weights to export, e.g.
            ``'encoder_k.module.0.'`` for a momentum encoder. Defaults to
            ``'backbone.'``.
        check (bool): Load the written file into the target library's model
            (:func:`check_export`). Defaults to False.
        num_heads (int, optional): A ViT's attention heads, which no weight
            shape holds (default: from the checkpoint's config when it has
            one). Only the report and the check model use it.

    Returns:
        dict: ``source``, ``out``, ``to``, ``src_prefix``, ``backbone`` (the
        :func:`describe_backbone` result), ``num_tensors`` and
        ``num_values`` written, ``loads_into`` (a description), ``notes``
        (warnings about what the target library builds differently), and
        ``check`` (:func:`check_export`'s result, or None).

    Raises:
        FileNotFoundError: ``ckpt`` does not exist.
        TypeError: ``ckpt`` holds no tensors.
        ValueError: Unknown ``to``; ``out`` is ``ckpt``; no backbone under
            ``src_prefix`` (naming the prefixes there are); a format the
            architecture has none of (a ViT to detectron2, a ViT with layer
            scale to torchvision, a deep stem to torchvision or
            detectron2), saying which formats it has.
    """
    _check_to(to)
    if osp.abspath(ckpt) == osp.abspath(out):
        raise ValueError(f'Refusing to overwrite the input checkpoint '
                         f'{ckpt!r}; give another output path.')
    raw = read_checkpoint(ckpt)
    weights = _source_weights(raw, src_prefix)
    info = describe_backbone(weights, _cfg_backbone(raw, src_prefix),
                             num_heads)
    notes: List[str] = []
    if info['arch'] == 'vit' and to == 'detectron2':
        raise ValueError(
            f"--to detectron2 is for ResNets only; {ckpt} holds a ViT "
            f"({info['type']}), which exports to {VIT_FORMATS} (torchvision "
            'only without layer scale, pre-norm or ln2).')
    if to in ('mmpretrain', 'mmdet'):
        prefix = 'backbone.' if to == 'mmdet' else ''
        written = weights if to == 'mmpretrain' else to_mmdet(weights)
        state = OrderedDict((prefix + k, v) for k, v in written.items())
        meta = backbone_meta(raw, ckpt, src_prefix, prefix, info['arch'])
        meta.update(exported_to=to, backbone=info['type'])
        _makedirs(out)
        torch.save(dict(state_dict=state, meta=meta), out)
        if info['arch'] == 'vit' and not info['avg_norm']:
            notes.append("a VisionTransformer built with out_type="
                         "'avg_featmap' (fine-tuning) adds ln2, which keeps "
                         'its fresh initialisation')
        if list(written) != list(weights):
            notes.append(
                "in mmdet's ResNet names (deep stem stem.0/1/3/4/6/7, a pool "
                'in every average-pool shortcut); an mmdet config that '
                f"builds 'mmpretrain.{info['type']}' wants --to mmpretrain "
                "and init_cfg=dict(type='Pretrained', checkpoint=OUT) "
                'without prefix')
    elif to == 'detectron2':
        if info['stem_kernel'] == 3:
            notes.append(
                "conv1 is a 3x3 stride-1 ResNet_CIFAR stem; detectron2's "
                'BasicStem is a 7x7 stride-2 conv and a max-pool: replace '
                'it to load these weights')
        if info['depth'] is None:
            notes.append(
                f"stage blocks {list(info['stage_blocks'])} are no standard "
                'depth: build the stages with detectron2 make_stage')
        if info['block'] == 'BasicBlock' and info['base_channels'] != 64:
            notes.append(
                f"detectron2 builds R18 / R34 with RES2_OUT_CHANNELS 64 only "
                f"(these weights: {info['base_channels']})")
        d2 = to_detectron2(weights)
        _makedirs(out)
        with open(out, 'wb') as f:
            pickle.dump({'model': d2, '__author__': 'mm_instdisc',
                         'matching_heuristics': True}, f)
        written = d2
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', UserWarning)
            try:
                state = from_mmpretrain(weights, to, info['arch'])
            except ValueError as e:
                ok = [f for f in ('mmpretrain', 'mmdet', 'timm') if f != to]
                raise ValueError(
                    f"Cannot export {info['type']} to {to}: {e} It exports "
                    f'to {ok}.') from None
        notes.extend(str(w.message) for w in caught
                     if issubclass(w.category, UserWarning))
        _makedirs(out)
        torch.save(state, out)
        written = state
    report = dict(
        source=ckpt, out=out, to=to, src_prefix=src_prefix, backbone=info,
        num_tensors=len(written),
        num_values=int(sum(v.size for v in written.values()) if to ==
                       'detectron2' else sum(v.numel()
                                             for v in written.values())),
        loads_into=target_description(to, info), notes=notes, check=None)
    if check:
        if to == 'detectron2':
            report['check'] = dict(
                library=to, skipped='detectron2 is not on PyPI; the names '
                "follow facebookresearch/moco's converter")
        else:
            report['check'] = check_export(out, to, info)
    return report


def format_report(report: dict) -> str:
    """The lines ``mm-instdisc-export`` prints for an
    :func:`export_backbone` report."""
    info = report['backbone']
    lines = [
        f"{report['source']} ({report['src_prefix']}*): {summary(info)}",
        f"wrote {report['num_tensors']} tensors "
        f"({report['num_values'] / 1e6:.3f} M values) in {report['to']} "
        f"format to {report['out']}",
        f"loads into: {report['loads_into']}"]
    if info['arch'] == 'vit' and info['num_heads'] is None:
        lines.append('num_heads: not stored in the weights (no shape depends '
                     'on it); pass --num-heads for the report, build the '
                     'target with the pretraining value')
    lines += [f'note: {n}' for n in report['notes']]
    chk = report['check']
    if chk is None:
        lines.append('not checked (pass --check to load the file into the '
                     "target library's model)")
    elif 'skipped' in chk:
        lines.append(f"check skipped: {chk['skipped']}")
    else:
        others = [k for k in chk['missing'] if k not in chk['classifier']]
        lines.append(
            f"check ({chk['model']}): {'OK' if chk['ok'] else 'FAILED'}; "
            f"{len(chk['missing'])} missing {chk['missing'][:8]}"
            + (' (the classifier, no backbone part)'
               if chk['classifier'] and not others else '')
            + f", {len(chk['unexpected'])} unexpected "
            f"{chk['unexpected'][:8]}, {len(chk['mismatched'])} of another "
            f"shape {chk['mismatched'][:4]}")
    return '\n'.join(lines)
