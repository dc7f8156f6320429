"""Backbone weights in other libraries' key names: detect, convert, load.

mm_instdisc pretrains mmpretrain backbones (``ResNet``, ``ResNetV1c``,
``ResNetV1d``, ``ResNet_CIFAR``; ``VisionTransformer`` and its subclass
``SplitMaskViT``). Users bring weights from torchvision or timm, and take
ours there. The functions here work on plain state dicts (torch only; the
initializer registers with mmengine):

* :func:`detect_format` / :func:`detect_arch`: which library and which
  architecture family a state dict's key names come from.
* :func:`to_mmpretrain` / :func:`from_mmpretrain`: rename keys (and the few
  tensors whose layout differs) between mmpretrain and ``'torchvision'`` or
  ``'timm'``, for ``arch='resnet'`` or ``'vit'``.
* :func:`~mm_instdisc.utils.checkpoint.read_checkpoint` (imported here):
  the one way mm_instdisc reads a weights file.
* :func:`load_backbone_weights`: read a file, strip its wrappers, convert,
  load into a backbone and report what loaded (shape mismatches raise).
* ``init_cfg=dict(type='ConvertedPretrained', checkpoint=...)``
  (:class:`ConvertedPretrainedInit`): the same from any OpenMMLab config,
  e.g. to continue self-supervised training from torchvision or timm weights.

Name correspondences, mmpretrain -> torchvision | timm (``N`` a layer):

* ResNet: ``conv1``, ``bn1``, ``layerS.B.{conv,bn}{1,2,3}``,
  ``layerS.B.downsample.{0,1}`` -> the same names in both. Deep stem
  (``stem.{0,1,2}.{conv,bn}``) -> none | ``conv1.{0,1,3,4,6}`` and ``bn1``
  (``stem.2.bn``). Average-pool shortcuts (ResNetV1d,
  ``downsample.{1,2}``) -> none | the same, and ``{1,2}`` for layer1's too,
  which mmpretrain keeps at ``{0,1}``. Classifier ``fc.*`` (dropped on
  import).
* ViT: ``cls_token`` -> ``class_token`` | ``cls_token``; ``pos_embed`` ->
  ``encoder.pos_embedding`` | ``pos_embed``; ``patch_embed.projection`` ->
  ``conv_proj`` | ``patch_embed.proj``; ``pre_norm`` -> none | ``norm_pre``;
  ``layers.N.ln1`` / ``ln2`` -> ``encoder.layers.encoder_layer_N.ln_1`` /
  ``ln_2`` | ``blocks.N.norm1`` / ``norm2``; ``layers.N.attn.qkv`` ->
  ``self_attention.in_proj_{weight,bias}`` | ``attn.qkv``;
  ``layers.N.attn.proj`` -> ``self_attention.out_proj`` | ``attn.proj``;
  ``layers.N.ffn.layers.0.0`` / ``ffn.layers.1`` -> ``mlp.0`` / ``mlp.3`` |
  ``mlp.fc1`` / ``mlp.fc2``; layer scale ``attn.gamma1.weight`` /
  ``ffn.gamma2.weight`` -> none | ``ls1.gamma`` / ``ls2.gamma``; final norm
  ``ln1`` -> ``encoder.ln`` | ``norm``; ``ln2`` (``out_type='avg_featmap'``)
  -> none | ``fc_norm``. Classifier ``heads.*`` | ``head.*`` (dropped).

A plain ResNet has the same key names in all three libraries, so its format
cannot be told from the names: :func:`detect_format` says ``'torchvision'``
when a ``fc`` classifier is there (timm's names are identical, and
``to_mmpretrain(sd, 'timm', 'resnet')`` gives the same result) and
``'mmpretrain'`` when there is none; only a deep stem (``conv1.0``) is
timm's own. The conventions the ViT mapping relies on (all checked against
timm and torchvision in tests/test_utils/test_backbone_formats.py): the class
token comes first and the position embedding covers it (timm
``no_embed_class=True`` models get a zero row for the class token on import,
which is the same function), ``qkv`` stacks q, k, v in that order (as
``nn.MultiheadAttention.in_proj_weight`` does), the final norm is
mmpretrain's top-level ``ln1`` (``final_norm=True``) and timm's ``fc_norm``
after average pooling is mmpretrain's ``ln2`` (``out_type='avg_featmap'``;
such timm models have no final norm, so build the mmpretrain ViT with
``final_norm=False``). ``SplitMaskViT`` has ``VisionTransformer``'s keys; with
``sincos_pos_embed=True`` an imported learned ``pos_embed`` is kept but stays
frozen (``requires_grad=False``) during training.
"""
import logging
import math
import re
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import Tensor, nn

from .checkpoint import read_checkpoint
from .selfsup_to_backbone import (_top_level_groups, backbone_family,
                                  get_state_dict, selfsup_to_backbone)

FORMATS = ('mmpretrain', 'torchvision', 'timm')
ARCHS = ('resnet', 'vit')

# --- ResNet ---------------------------------------------------------------
# mmpretrain deep stem (ResNetV1c / ResNetV1d) <-> timm's Sequential conv1
# (conv, bn, act, conv, bn, act, conv) followed by bn1
_TIMM_DEEP_STEM = OrderedDict([('stem.0.conv', 'conv1.0'),
                               ('stem.0.bn', 'conv1.1'),
                               ('stem.1.conv', 'conv1.3'),
                               ('stem.1.bn', 'conv1.4'),
                               ('stem.2.conv', 'conv1.6'),
                               ('stem.2.bn', 'bn1')])
_RESNET_KEY = re.compile(r'^(conv1|bn1)\.[^.]+$|'
                         r'^layer\d+\.\d+\.(conv[123]|bn[123])\.[^.]+$')
_DOWNSAMPLE = re.compile(r'^layer(\d+)\.(\d+)\.downsample\.(\d+)\.([^.]+)$')

# --- ViT --------------------------------------------------------------------
# (mmpretrain name, other name) for keys outside the layers, then per layer
_VIT_TIMM_TOP = [('cls_token', 'cls_token'), ('pos_embed', 'pos_embed'),
                 ('patch_embed.projection', 'patch_embed.proj'),
                 ('pre_norm', 'norm_pre'), ('ln1', 'norm'),
                 ('ln2', 'fc_norm')]
_VIT_TIMM_LAYER = [('ln1', 'norm1'), ('attn.qkv', 'attn.qkv'),
                   ('attn.proj', 'attn.proj'),
                   ('attn.gamma1.weight', 'ls1.gamma'), ('ln2', 'norm2'),
                   ('ffn.layers.0.0', 'mlp.fc1'), ('ffn.layers.1', 'mlp.fc2'),
                   ('ffn.gamma2.weight', 'ls2.gamma')]
_VIT_TV_TOP = [('cls_token', 'class_token'),
               ('pos_embed', 'encoder.pos_embedding'),
               ('patch_embed.projection', 'conv_proj'), ('ln1', 'encoder.ln')]
_VIT_TV_LAYER = [('ln1', 'ln_1'),
                 ('attn.qkv.weight', 'self_attention.in_proj_weight'),
                 ('attn.qkv.bias', 'self_attention.in_proj_bias'),
                 ('attn.proj', 'self_attention.out_proj'), ('ln2', 'ln_2'),
                 ('ffn.layers.0.0', 'mlp.0'), ('ffn.layers.1', 'mlp.3')]
# torchvision < 0.13 named the MLP linear_1 / linear_2 (import only)
_VIT_TV_LAYER_OLD = [('ffn.layers.0.0', 'mlp.linear_1'),
                     ('ffn.layers.1', 'mlp.linear_2')]
_VIT_LAYERS = {'mmpretrain': re.compile(r'^layers\.(\d+)\.(.+)$'),
               'timm': re.compile(r'^blocks\.(\d+)\.(.+)$'),
               'torchvision': re.compile(
                   r'^encoder\.layers\.encoder_layer_(\d+)\.(.+)$')}
_VIT_LAYER_FMT = {'mmpretrain': 'layers.{}.{}', 'timm': 'blocks.{}.{}',
                  'torchvision': 'encoder.layers.encoder_layer_{}.{}'}
# classifier keys, dropped on import: they are no part of a backbone
_CLASSIFIER = {('resnet', 'torchvision'): ('fc.',),
               ('resnet', 'timm'): ('fc.',),
               ('vit', 'timm'): ('head.',),
               ('vit', 'torchvision'): ('heads.',)}


def _check_choice(value: str, name: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f'Illegal {name}: {value!r}; expected one of '
                         f'{tuple(choices)}.')


def _has_avg_down(sd: Dict[str, Tensor]) -> bool:
    """Average-pool shortcuts (``downsample.2.*``: ResNetV1d, timm ``d``)."""
    return any(m is not None and m[3] == '2'
               for m in map(_DOWNSAMPLE.match, sd))


def _detect(state_dict: Dict[str, Tensor]) -> Tuple[str, str]:
    """(format, arch) of bare backbone-or-model weights."""
    keys = list(state_dict)
    if any(k.startswith('backbone.') for k in keys):
        sub = {k[len('backbone.'):]: v for k, v in state_dict.items()
               if k.startswith('backbone.')}
        return 'mmpretrain', _detect(sub)[1]

    def has(*names: str) -> bool:
        return any(k.startswith(n) for k in keys for n in names)

    if has('patch_embed.projection.', 'layers.0.ln1.'):
        return 'mmpretrain', 'vit'
    if has('patch_embed.proj.', 'blocks.0.norm1.'):
        return 'timm', 'vit'
    if has('conv_proj.', 'encoder.layers.encoder_layer_0.', 'class_token'):
        return 'torchvision', 'vit'
    if has('layer1.0.conv1.'):
        if has('stem.0.'):
            return 'mmpretrain', 'resnet'
        if has('conv1.0.'):
            return 'timm', 'resnet'
        if has('fc.'):
            return 'torchvision', 'resnet'
        return 'mmpretrain', 'resnet'
    groups = _top_level_groups(keys)
    raise ValueError(
        f'Unknown backbone weights: {len(keys)} tensors under {groups}. '
        'Expected a ResNet (conv1 / bn1 / layer1.0.conv1 or stem.*; '
        'torchvision, timm or mmpretrain names) or a ViT (mmpretrain '
        'patch_embed.projection / layers.N, timm patch_embed.proj / blocks.N, '
        'torchvision conv_proj / encoder.layers), optionally under '
        "'backbone.' (a self-supervised or mmpretrain classifier checkpoint).")


def detect_format(state_dict: Dict[str, Tensor]) -> str:
    """The library whose key names a state dict uses.

    Args:
        state_dict (dict[str, Tensor]): Weights, bare or as a checkpoint
            (``{'state_dict': ...}``, ``{'model': ...}``, ``module.`` keys).

    Returns:
        str: ``'mmpretrain'`` (our names, with or without a ``'backbone.'``
        prefix, or a whole self-supervised checkpoint), ``'torchvision'`` or
        ``'timm'``. A plain-stem ResNet has the same names in all three:
        ``'torchvision'`` when a ``fc`` classifier is there (a timm ResNet
        then reads the same, and converting it as ``'timm'`` gives the same
        weights), ``'mmpretrain'`` otherwise; a deep stem is ``'timm'``
        (``conv1.0``) or ``'mmpretrain'`` (``stem.0``).

    Raises:
        ValueError: Neither a ResNet nor a ViT of these libraries; the
            message names the key groups found and the ones expected.

    Examples:
        >>> import torchvision
        >>> detect_format(torchvision.models.resnet18().state_dict())
        'torchvision'
    """
    return _detect(get_state_dict(state_dict))[0]


def detect_arch(state_dict: Dict[str, Tensor]) -> str:
    """``'resnet'`` or ``'vit'``: the architecture family of a state dict
    in any of the formats of :func:`detect_format` (same arguments and
    errors)."""
    return _detect(get_state_dict(state_dict))[1]


def _rename(name: str, table: Sequence[Tuple[str, str]],
            reverse: bool = False) -> Optional[str]:
    """``name`` with the first matching module prefix of ``table``
    replaced (mmpretrain -> other, or back with ``reverse``); None if none
    matches."""
    for mm, other in table:
        src, dst = (other, mm) if reverse else (mm, other)
        if name == src or name.startswith(src + '.'):
            return dst + name[len(src):]
    return None


def _unmapped_error(keys: List[str], what: str) -> ValueError:
    return ValueError(
        f'{len(keys)} keys have no {what} equivalent, e.g. {keys[:6]}; '
        'these layers are not part of the supported architectures (plain '
        'ResNet, ResNetV1c/V1d deep stem, ViT with optional layer scale, '
        'pre-norm and average-pool norm).')


def _resnet_to_mm(sd: Dict[str, Tensor],
                  fmt: str) -> 'OrderedDict[str, Tensor]':
    deep = any(k.startswith('conv1.0.') for k in sd)
    avg = _has_avg_down(sd)
    if fmt == 'torchvision' and (deep or avg):
        raise ValueError(
            'These ResNet weights have a deep stem (conv1.0.*) or an '
            'average-pool shortcut (downsample.2.*), which torchvision\'s '
            "resnet has not: they are timm's resnet*c / resnet*d layout; "
            "convert them with fmt='timm'.")
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for k, v in sd.items():
        if deep and (k.startswith('conv1.') or k.startswith('bn1.')):
            new = _rename(k, list(_TIMM_DEEP_STEM.items()), reverse=True)
            if new is None:
                unmapped.append(k)
            else:
                out[new] = v
            continue
        m = _DOWNSAMPLE.match(k)
        if m:
            stage, block, idx, param = m.groups()
            if avg and stage == '1':
                # timm keeps an Identity "pool" at index 0 of every
                # average-pool shortcut; mmpretrain adds the pool only where
                # the stage has stride 2, i.e. not in layer1 (default
                # strides (1, 2, 2, 2))
                if idx == '0':
                    unmapped.append(k)
                    continue
                idx = str(int(idx) - 1)
            out[f'layer{stage}.{block}.downsample.{idx}.{param}'] = v
        elif _RESNET_KEY.match(k):
            out[k] = v
        else:
            unmapped.append(k)
    if unmapped:
        raise _unmapped_error(unmapped, 'mmpretrain ResNet')
    return out


def _resnet_from_mm(sd: Dict[str, Tensor],
                    fmt: str) -> 'OrderedDict[str, Tensor]':
    deep = any(k.startswith('stem.') for k in sd)
    avg = _has_avg_down(sd)
    if fmt == 'torchvision' and deep:
        raise ValueError(
            'This ResNet has a deep stem (stem.* keys: ResNetV1c / ResNetV1d, '
            'deep_stem=True), which torchvision\'s resnet has not (one 7x7 '
            "conv1); export it with fmt='timm' (timm's resnet*c / resnet*d "
            'conv1.0 / conv1.3 / conv1.6 stem).')
    if fmt == 'torchvision' and avg:
        raise ValueError(
            'This ResNet has average-pool shortcuts (downsample.2.* keys: '
            'ResNetV1d, avg_down=True), which torchvision\'s resnet has not; '
            "export it with fmt='timm' (timm's resnet*d layout).")
    conv1 = sd.get('conv1.weight')
    if conv1 is not None and (tuple(conv1.shape[1:]) != (3, 7, 7)
                              or conv1.shape[0] != 64):
        warnings.warn(
            f'conv1.weight has shape {tuple(conv1.shape)}, {fmt}\'s resnet '
            'builds (64, 3, 7, 7) followed by a max-pool. The key names are '
            'the same and the weights load with strict=True only into a '
            'model built to match: for ResNet_CIFAR (3x3 stride-1 conv1, no '
            'max-pool) replace model.conv1 with nn.Conv2d(in_channels, '
            'stem_channels, 3, 1, 1, bias=False) and model.maxpool with '
            'nn.Identity(); other widths (base_channels != 64) need a '
            'ResNet built with those widths.', UserWarning, stacklevel=3)
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for k, v in sd.items():
        if k.startswith('stem.'):
            new = _rename(k, list(_TIMM_DEEP_STEM.items()))
            if new is None:
                unmapped.append(k)
            else:
                out[new] = v
            continue
        m = _DOWNSAMPLE.match(k)
        if m:
            stage, block, idx, param = m.groups()
            if avg and f'layer{stage}.{block}.downsample.2.{param}' not in sd:
                # a shortcut without pool (stride 1) in an avg_down model:
                # timm's layout has an Identity at index 0 there
                idx = str(int(idx) + 1)
            out[f'layer{stage}.{block}.downsample.{idx}.{param}'] = v
        elif _RESNET_KEY.match(k):
            out[k] = v
        else:
            unmapped.append(k)
    if unmapped:
        raise _unmapped_error(unmapped, f'{fmt} ResNet')
    return out


def _vit_tables(fmt: str) -> Tuple[list, list]:
    if fmt == 'timm':
        return _VIT_TIMM_TOP, _VIT_TIMM_LAYER
    return _VIT_TV_TOP, _VIT_TV_LAYER


def _vit_to_mm(sd: Dict[str, Tensor],
               fmt: str) -> 'OrderedDict[str, Tensor]':
    top, layer = _vit_tables(fmt)
    if fmt == 'torchvision':
        layer = layer + _VIT_TV_LAYER_OLD
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for k, v in sd.items():
        m = _VIT_LAYERS[fmt].match(k)
        if m:
            new = _rename(m[2], layer, reverse=True)
            new = None if new is None else f'layers.{m[1]}.{new}'
        else:
            new = _rename(k, top, reverse=True)
        if new is None:
            unmapped.append(k)
        else:
            out[new] = v
    if unmapped:
        raise _unmapped_error(unmapped, 'mmpretrain VisionTransformer')
    pos = out.get('pos_embed')
    if fmt == 'timm' and pos is not None and 'cls_token' in out and (
            math.isqrt(pos.shape[1])**2 == pos.shape[1]):
        # timm no_embed_class=True (DeiT-3): the class token gets no position
        # embedding; mmpretrain adds pos_embed[:, 0] to it, so a zero row
        # there is the same model
        warnings.warn(
            f'pos_embed of shape {tuple(pos.shape)} covers the patches only '
            '(timm no_embed_class=True); a zero row is prepended for the '
            "class token, which mmpretrain's VisionTransformer adds to it.",
            UserWarning, stacklevel=3)
        out['pos_embed'] = torch.cat([pos.new_zeros(1, 1, pos.shape[2]), pos],
                                     dim=1)
    return out


def _vit_from_mm(sd: Dict[str, Tensor],
                 fmt: str) -> 'OrderedDict[str, Tensor]':
    top, layer = _vit_tables(fmt)
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for k, v in sd.items():
        m = _VIT_LAYERS['mmpretrain'].match(k)
        if m:
            new = _rename(m[2], layer)
            new = None if new is None else _VIT_LAYER_FMT[fmt].format(
                m[1], new)
        else:
            new = _rename(k, top)
        if new is None:
            unmapped.append(k)
        else:
            out[new] = v
    if unmapped:
        raise _unmapped_error(unmapped, f'{fmt} ViT')
    if fmt == 'torchvision':
        # qkv_bias=False: nn.MultiheadAttention always has a bias; zero is
        # the same function
        for k, v in sd.items():
            m = re.match(r'^layers\.(\d+)\.attn\.qkv\.weight$', k)
            if m and f'layers.{m[1]}.attn.qkv.bias' not in sd:
                name = _VIT_LAYER_FMT[fmt].format(
                    m[1], 'self_attention.in_proj_bias')
                out[name] = v.new_zeros(v.shape[0])
    return out


_TO_MM = {'resnet': _resnet_to_mm, 'vit': _vit_to_mm}
_FROM_MM = {'resnet': _resnet_from_mm, 'vit': _vit_from_mm}


def _strip_backbone(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    if any(k.startswith('backbone.') for k in sd):
        return selfsup_to_backbone(sd, 'backbone.')
    return sd


def _split_classifier(sd: Dict[str, Tensor], fmt: str, arch: str
                      ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    heads = _CLASSIFIER.get((arch, fmt), ())
    kept = OrderedDict((k, v) for k, v in sd.items()
                       if not k.startswith(heads))
    return kept, [k for k in sd if k not in kept]


def to_mmpretrain(state_dict: Dict[str, Tensor], fmt: str,
                  arch: str) -> 'OrderedDict[str, Tensor]':
    """Convert torchvision or timm backbone weights to mmpretrain names.

    The classifier (``fc.*`` of a ResNet, ``head.*`` / ``heads.*`` of a ViT)
    is dropped: mmpretrain keeps it in a separate head. The result loads
    with ``strict=True`` into the matching mmpretrain backbone:

    * ``arch='resnet'``: ``ResNet(depth=...)`` from torchvision's or timm's
      ``resnetNN``, ``ResNetV1c`` / ``ResNetV1d`` from timm's ``resnetNNc`` /
      ``resnetNNd`` (deep stem, average-pool shortcuts; mmpretrain's default
      strides (1, 2, 2, 2) are assumed, so that only layer1's shortcut has no
      pool). Weights of a torchvision ResNet whose ``conv1`` the user
      replaced by a 3x3 one (and ``maxpool`` by ``nn.Identity``) load into
      ``ResNet_CIFAR``.
    * ``arch='vit'``: ``VisionTransformer`` / ``SplitMaskViT`` from timm's
      ``vit_*`` (``fc_norm`` becomes ``ln2``: build with
      ``out_type='avg_featmap', final_norm=False``; layer scale
      ``init_values`` becomes ``layer_scale_init_value``; ``norm_pre``
      becomes ``pre_norm``) or torchvision's ``VisionTransformer``
      (``vit_b_16`` ...).

    Args:
        state_dict (dict[str, Tensor]): The other library's weights (bare,
            or as a checkpoint, see :func:`detect_format`).
        fmt (str): ``'torchvision'`` or ``'timm'`` (``'mmpretrain'``
            returns the weights unchanged, less a ``'backbone.'`` prefix).
        arch (str): ``'resnet'`` or ``'vit'``.

    Returns:
        OrderedDict[str, Tensor]: The backbone weights in mmpretrain names
        (the same tensors, not copies).

    Raises:
        ValueError: Unknown ``fmt`` / ``arch``; a key that has no mmpretrain
            equivalent (e.g. timm's ``attn.q_norm``, ``reg_token``, SE
            layers), named in the message; deep-stem weights given as
            ``'torchvision'``.

    Examples:
        >>> import torchvision
        >>> sd = torchvision.models.resnet18().state_dict()
        >>> ours = to_mmpretrain(sd, 'torchvision', 'resnet')
        >>> 'fc.weight' in ours, len(sd) - len(ours)
        (False, 2)
    """
    _check_choice(fmt, 'fmt', FORMATS)
    _check_choice(arch, 'arch', ARCHS)
    sd = get_state_dict(state_dict)
    if fmt == 'mmpretrain':
        return OrderedDict(_strip_backbone(sd))
    sd, _ = _split_classifier(sd, fmt, arch)
    return _TO_MM[arch](sd, fmt)


def from_mmpretrain(state_dict: Dict[str, Tensor], fmt: str,
                    arch: str) -> 'OrderedDict[str, Tensor]':
    """Convert mmpretrain backbone weights to torchvision or timm names.

    The result has no classifier: load it into the other library's model
    with ``strict=False`` and check that only ``fc.*`` / ``head.*`` /
    ``heads.*`` are missing (tests/test_utils/test_backbone_formats.py).

    ``ResNet_CIFAR`` (3x3 stride-1 ``conv1``, no max-pool), other widths
    (``stem_channels`` / ``base_channels`` != 64) and ``in_channels=1`` give
    the same key names as torchvision's ResNet, but not its architecture:
    the weights load with ``strict=True`` only into a model built to match
    (for ResNet_CIFAR, ``model.conv1 = nn.Conv2d(in_channels,
    stem_channels, 3, 1, 1, bias=False)`` and ``model.maxpool =
    nn.Identity()``); a ``UserWarning`` says so. A deep stem (``stem.*``,
    ``ResNetV1c`` / ``ResNetV1d``) and average-pool shortcuts have no
    torchvision equivalent (ValueError); timm's ``resnetNNc`` / ``resnetNNd``
    take them. torchvision's ViT has no layer scale, pre-norm or
    average-pool norm (ValueError naming those keys).

    Args:
        state_dict (dict[str, Tensor]): mmpretrain backbone weights, bare or
            under ``'backbone.'`` (a whole self-supervised checkpoint's
            ``state_dict`` is fine: only ``backbone.*`` is kept).
        fmt (str): ``'torchvision'`` or ``'timm'``.
        arch (str): ``'resnet'`` or ``'vit'``.

    Returns:
        OrderedDict[str, Tensor]: The weights in the other library's names.

    Raises:
        ValueError: Unknown ``fmt`` / ``arch``, or keys with no equivalent
            there (named in the message).
    """
    _check_choice(fmt, 'fmt', ('torchvision', 'timm'))
    _check_choice(arch, 'arch', ARCHS)
    sd = _strip_backbone(get_state_dict(state_dict))
    return _FROM_MM[arch](sd, fmt)


def _log(msg: str, logger=None, warning: bool = False) -> None:
    """print (logger None), ``'silent'``, ``'current'`` (mmengine's current
    logger) or a ``logging.Logger``."""
    if logger == 'silent':
        return
    if logger is None:
        print(msg)
    elif isinstance(logger, str):
        from mmengine.logging import print_log
        print_log(msg, logger=logger,
                  level=logging.WARNING if warning else logging.INFO)
    else:
        (logger.warning if warning else logger.info)(msg)


def _allows_resize(backbone: nn.Module, key: str, have: Tensor,
                   want: Tensor) -> bool:
    """mmpretrain's VisionTransformer resizes a ``pos_embed`` of another
    patch grid itself when loading (``_prepare_pos_embed``)."""
    return (key == 'pos_embed' and hasattr(backbone, '_prepare_pos_embed')
            and have.dim() == 3 and want.dim() == 3
            and have.shape[2] == want.shape[2])


def read_backbone_weights(path: str, fmt: str = 'auto',
                          prefix: Optional[str] = None
                          ) -> Tuple[Dict[str, Tensor], str, str, List[str]]:
    """A weights file's backbone in mmpretrain names: the file read
    (:func:`read_checkpoint`), unwrapped, the ``prefix`` (or a
    ``backbone.``) kept, the format detected and converted, the classifier
    dropped.

    Returns:
        tuple: (state dict, format found, ``'resnet'`` / ``'vit'``, the
        classifier keys dropped).
    """
    _check_choice(fmt, 'fmt', ('auto', ) + FORMATS)
    state = get_state_dict(read_checkpoint(path))
    if prefix is not None:
        state = selfsup_to_backbone(state, prefix)
    else:
        state = _strip_backbone(state)
    found_fmt, arch = _detect(state)
    if fmt == 'auto':
        fmt = found_fmt
    dropped: List[str] = []
    if fmt != 'mmpretrain':
        state, dropped = _split_classifier(state, fmt, arch)
        state = to_mmpretrain(state, fmt, arch)
    return state, fmt, arch, dropped


def load_backbone_weights(backbone: nn.Module, path: str, fmt: str = 'auto',
                          prefix: Optional[str] = None,
                          logger=None) -> dict:
    """Load mmpretrain, torchvision or timm weights into a backbone.

    Reads ``path`` (:func:`read_checkpoint`), takes the weights out of a
    ``state_dict`` / ``model`` wrapper and a DDP ``module.`` prefix, keeps
    the keys under ``prefix`` (default: ``'backbone.'`` when the file has
    such keys, e.g. a self-supervised or classifier checkpoint, else all),
    converts them to mmpretrain names (:func:`to_mmpretrain`, classifier
    dropped) and loads them with ``strict=False``. Keys the backbone lacks
    or the file lacks are reported, not fatal; a tensor of another shape is
    an error (except ``pos_embed`` of a ViT, which mmpretrain resizes to its
    patch grid and which is reported as resized).

    Args:
        backbone (nn.Module): The mmpretrain backbone (``ResNet``,
            ``ResNet_CIFAR``, ``VisionTransformer``, ``SplitMaskViT``, ...).
        path (str): The weights file.
        fmt (str): ``'auto'`` (:func:`detect_format`), ``'mmpretrain'``,
            ``'torchvision'`` or ``'timm'``. Defaults to ``'auto'``.
        prefix (str, optional): Module whose weights to take, ending with
            ``'.'`` (e.g. ``'encoder_k.module.0.'``). Defaults to None.
        logger (optional): None (print), ``'silent'``, ``'current'``
            (mmengine's logger) or a ``logging.Logger``. Defaults to None.

    Returns:
        dict: ``source``, ``format``, ``arch``, ``loaded`` (number of
        tensors loaded), ``missing`` (backbone keys the file lacks),
        ``unexpected`` (file keys the backbone lacks), ``resized`` and
        ``dropped`` (classifier keys left out).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: The file holds no tensors.
        ValueError: Bad ``fmt``; no key under ``prefix``; a ViT file for a
            ResNet (or the reverse); a shape mismatch (naming the key and
            both shapes); no key at all in common with the backbone (naming
            the file's and the backbone's key groups).
    """
    state, fmt, arch, dropped = read_backbone_weights(path, fmt, prefix)
    want_arch = backbone_family(backbone.state_dict())
    if want_arch != 'unknown' and want_arch != arch:
        raise ValueError(
            f'{path} holds {arch} weights ({fmt} names, e.g. '
            f'{list(state)[:3]}), but the backbone is a {want_arch} '
            f'({type(backbone).__name__}); use weights of its architecture.')
    target = backbone.state_dict()
    common = [k for k in state if k in target]
    if not common:
        raise ValueError(
            f'No weight of {path} ({fmt} {arch}, {len(state)} tensors under '
            f'{_top_level_groups(state)}) matches {type(backbone).__name__}, '
            f'whose keys are under {_top_level_groups(target)}; pass fmt= '
            'or prefix= if the format or the module was guessed wrong.')
    resized = []
    pos_shape = tuple(state['pos_embed'].shape) if 'pos_embed' in state else ()
    for k in common:
        have, want = state[k].shape, target[k].shape
        if have == want:
            continue
        if _allows_resize(backbone, k, state[k], target[k]):
            resized.append(k)
            continue
        hint = ''
        if k == 'conv1.weight' and have[-1] != want[-1]:
            hint = (' (a 7x7 ImageNet stem for a 3x3 ResNet_CIFAR one, or '
                    'the reverse: build the backbone with the stem of the '
                    'weights)')
        raise ValueError(
            f'Shape mismatch for {k}: {tuple(have)} in {path}, '
            f'{tuple(want)} in {type(backbone).__name__}{hint}.')
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    report = dict(source=path, format=fmt, arch=arch, loaded=len(common),
                  missing=list(missing), unexpected=list(unexpected),
                  resized=resized, dropped=dropped)
    same = (' (torchvision and timm ResNet names are the same)'
            if arch == 'resnet' and fmt in ('torchvision', 'timm') else '')
    _log(f'{type(backbone).__name__}: loaded {len(common)} of '
         f'{len(target)} tensors from {path} ({fmt} {arch} weights{same}); '
         f'{len(missing)} missing {list(missing)[:8]}, {len(unexpected)} '
         f'unexpected {list(unexpected)[:8]}'
         + (f', pos_embed resized {pos_shape} -> '
            f'{tuple(target["pos_embed"].shape)}' if resized else '')
         + (f', classifier dropped ({len(dropped)} tensors)' if dropped
            else ''), logger, warning=bool(missing or unexpected))
    return report


@WEIGHT_INITIALIZERS.register_module(name='ConvertedPretrained')
class ConvertedPretrainedInit:
    """Initialize a backbone from mmpretrain, torchvision or timm weights.

    ``model.backbone.init_cfg = dict(type='ConvertedPretrained',
    checkpoint='resnet18.pth')`` in any OpenMMLab config (our configs,
    mmpretrain's ``tools/train.py``, mmdet configs: it is registered in
    mmengine's root ``WEIGHT_INITIALIZERS``, which the child registries of
    mmpretrain and mmdet fall back to) continues training from the given
    weights through :func:`load_backbone_weights`.

    mmengine's ``BaseModule.init_weights`` runs such an initializer before
    the module's children initialize themselves, and the backbones' own
    ``init_weights`` re-initialize after it unless
    ``init_cfg['type'] == 'Pretrained'`` (mmpretrain's ResNet zeroes the
    last norm of each block, ``zero_init_residual``; VisionTransformer draws
    a new ``pos_embed``, its layers new FFN weights; SplitMaskViT a sin-cos
    ``pos_embed`` and class token). So the initializer first runs the
    children's ``init_weights`` (what ``BaseModule`` would do next; they are
    then marked initialized), loads the weights, and sets the module's
    ``init_cfg`` to ``dict(type='Pretrained', checkpoint=..., converted=
    report)`` (a record of what was loaded), so that these checks leave the
    weights alone. Use it as the module's only ``init_cfg``, or the last in
    a list.

    Args:
        checkpoint (str): The weights file (local; unlike ``Pretrained``, no
            URL).
        format (str): ``'auto'``, ``'mmpretrain'``, ``'torchvision'`` or
            ``'timm'``. Defaults to ``'auto'``.
        prefix (str, optional): Module of the file whose weights to take
            (see :func:`load_backbone_weights`). Defaults to None.
    """

    def __init__(self, checkpoint: str, format: str = 'auto',
                 prefix: Optional[str] = None) -> None:
        _check_choice(format, 'format', ('auto', ) + FORMATS)
        self.checkpoint = checkpoint
        self.format = format
        self.prefix = prefix

    def __call__(self, module: nn.Module) -> None:
        from mmengine.model.weight_init import update_init_info
        cfgs = module.init_cfg if isinstance(module.init_cfg,
                                             list) else [module.init_cfg]
        if isinstance(cfgs[-1], dict) and cfgs[-1].get('type') not in (
                'ConvertedPretrained', ConvertedPretrainedInit):
            raise ValueError(
                f'{type(module).__name__}.init_cfg: ConvertedPretrained must '
                f'be the last entry, got {module.init_cfg}; a later one would '
                'overwrite the loaded weights.')
        for child in module.children():
            if hasattr(child, 'init_weights') and not getattr(
                    child, 'is_init', False):
                child.init_weights()
        report = load_backbone_weights(module, self.checkpoint, self.format,
                                       self.prefix, logger='current')
        module.init_cfg = dict(type='Pretrained', checkpoint=self.checkpoint,
                               converted=report)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return (f'{self.__class__.__name__}: load {self.format} weights from '
                f'{self.checkpoint}')
