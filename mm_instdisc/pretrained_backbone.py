"""The backbone of a pretraining checkpoint, as the transfer commands
(``mm-instdisc-det-train``, ``mm-instdisc-cls-train``) read it.

* :func:`read_pretrained_backbone` loads a pretraining checkpoint (or a
  converted backbone file), keeps its backbone weights, describes their
  architecture (:func:`mm_instdisc.utils.export.describe_backbone`) and
  gives the pretraining config's backbone and normalisation.
* :func:`vit_backbone_config` is the mmpretrain config of the ViT so
  described (SplitMask's ``SplitMaskViT`` or ``VisionTransformer``): width,
  depth, heads, FFN, patch size, position-embedding grid, input channels
  and the flags the weights show, plus the pretraining config's keys that
  no weight holds (fixed sin-cos position embedding, layer-scale init).
* :func:`build_verified` builds a backbone config and refuses weights that
  do not load into it exactly
  (:func:`mm_instdisc.utils.selfsup_to_backbone.verify_backbone`).
"""
import inspect
import os.path as osp
from typing import Dict, Optional

from torch import Tensor, nn

#: the ViT classes the transfer configs build (SplitMask's, mmpretrain's)
VIT_TYPES = ('SplitMaskViT', 'VisionTransformer')
#: keys of a pretraining ViT config that set what no weight shape holds
VIT_CFG_KEYS = ('sincos_pos_embed', 'interpolate_mode',
                'layer_scale_init_value', 'norm_cfg')
#: keys of a ViT config that the blocks of the transfer configs (see
#: :func:`vit_config_vars`) leave to a ``model['backbone'].update(...)``
VIT_EXTRA_KEYS = ('qkv_bias', 'final_norm', 'layer_scale_init_value',
                  'sincos_pos_embed', 'interpolate_mode', 'norm_cfg',
                  'with_cls_token', 'pre_norm')


def read_pretrained_backbone(checkpoint: str,
                             num_heads: Optional[int] = None) -> dict:
    """The backbone weights, architecture and normalisation of a
    pretraining checkpoint.

    Args:
        checkpoint (str): A pretraining checkpoint (``backbone.*`` keys; its
            ``meta['cfg']``, which mmengine's Runner saves, gives the
            pretraining config) or a converted backbone file (no prefix).
        num_heads (int, optional): A ViT's attention heads, which no weight
            shape holds; None takes them from the checkpoint's config.
            Defaults to None.

    Returns:
        dict: ``weights`` (backbone state dict without prefix), ``prefix``
        (``'backbone.'``, or None for a converted file), ``info``
        (:func:`~mm_instdisc.utils.export.describe_backbone`), ``cfg`` (the
        pretraining config's ``model.backbone``, ``{}`` when it carries
        none), ``mean`` / ``std`` (its data preprocessor's, one value per
        input channel, or None).

    Raises:
        FileNotFoundError: No such file.
        ValueError: No backbone in it (the message names the key groups it
            has), or ``num_heads`` does not divide a ViT's width.
    """
    from mm_instdisc.utils.checkpoint import read_checkpoint
    from mm_instdisc.utils.export import (checkpoint_model_cfg,
                                          describe_backbone)
    from mm_instdisc.utils.selfsup_to_backbone import (_top_level_groups,
                                                       backbone_family,
                                                       get_state_dict,
                                                       selfsup_to_backbone)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'--checkpoint {checkpoint!r} does not '
                                'exist.')
    ckpt = read_checkpoint(checkpoint)
    state = get_state_dict(ckpt)
    if any(k.startswith('backbone.') for k in state):
        weights, prefix = selfsup_to_backbone(state), 'backbone.'
    elif backbone_family(state) != 'unknown':
        weights, prefix = state, None  # a converted file, --out-prefix none
    else:
        raise ValueError(
            f'--checkpoint {checkpoint}: no backbone in it; it has '
            f'{len(state)} tensors under {_top_level_groups(state)}. '
            'Expected a pretraining checkpoint (backbone.* keys) or a '
            'converted backbone (mm-instdisc-convert).')
    model_cfg = checkpoint_model_cfg(ckpt) or {}
    cfg = dict(model_cfg.get('backbone') or {})
    info = describe_backbone(weights, cfg, num_heads)
    pre = model_cfg.get('data_preprocessor') or {}
    mean, std = pre.get('mean'), pre.get('std')
    if mean is None or std is None or len(mean) != info['in_channels']:
        mean = std = None
    return dict(weights=weights, prefix=prefix, info=info, cfg=cfg,
                mean=None if mean is None else [float(v) for v in mean],
                std=None if std is None else [float(v) for v in std])


def vit_backbone_config(info: dict, cfg: Optional[dict],
                        where: str) -> dict:
    """The mmpretrain config of the ViT ``info`` describes.

    ``type`` is ``SplitMaskViT`` for SplitMask's checkpoints (their
    config's type), else ``VisionTransformer``; ``arch`` (width, depth,
    heads, FFN), ``img_size`` (the position embeddings' grid times the
    patch size: the pretraining image side), ``patch_size``,
    ``in_channels``, ``qkv_bias``, ``final_norm`` and the layer scale come
    from the weights, :data:`VIT_CFG_KEYS` from the pretraining config
    (initialisation and position embedding). ``out_type``,
    ``drop_path_rate`` and ``init_cfg`` are the caller's.

    Args:
        info (dict): :func:`~mm_instdisc.utils.export.describe_backbone` of
            a ViT.
        cfg (dict, optional): The pretraining config's backbone.
        where (str): What is read, for the messages.

    Returns:
        dict: The backbone config (``type`` without scope).

    Raises:
        ValueError: The heads are unknown (a checkpoint without its
            config), or the patch grid is not square.
    """
    from mm_instdisc.utils.export import _mm_vit_kwargs, summary
    if info['num_heads'] is None:
        raise ValueError(
            f'{where}: {summary(info)}: the number of attention heads is in '
            'no weight shape and the checkpoint carries no pretraining '
            'config that gives it. Use the checkpoint the pretraining run '
            'wrote (mm-instdisc-train saves its config in it), not a '
            'converted backbone file.')
    if info['img_size'] is None:
        raise ValueError(f'{where}: {summary(info)}; expected a square grid '
                         'of position embeddings.')
    kind = 'SplitMaskViT' if info['type'] == 'SplitMaskViT' else \
        'VisionTransformer'
    kwargs = _mm_vit_kwargs(info, info['num_heads'])
    kwargs.pop('out_type')
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401  (registers SplitMaskViT)
    params = inspect.signature(MODELS.get(kind).__init__).parameters
    cfg = cfg or {}
    for key in VIT_CFG_KEYS:
        if key in cfg and key in params:
            kwargs[key] = cfg[key]
    if not info['layer_scale']:
        kwargs['layer_scale_init_value'] = 0.
    elif not kwargs.get('layer_scale_init_value'):
        kwargs['layer_scale_init_value'] = 0.1  # the weights have one
    for key in ('with_cls_token', 'pre_norm'):
        if key not in params:  # SplitMaskViT: a class token, no pre-norm
            kwargs.pop(key)
    return dict(type=kind, **kwargs)


def vit_config_vars(backbone: dict) -> dict:
    """The block variables of the ViT transfer configs (detection's
    ``configs/benchmarks/mmdetection/custom/faster-rcnn_r18-w32_fpn_custom.py``
    and classification's ``splitmask-vit_*_custom.py``) for the ViT config
    ``backbone`` (:func:`vit_backbone_config`): ``backbone_type``,
    ``embed_dims``, ``num_layers``, ``num_heads``,
    ``feedforward_channels``, ``patch_size`` and ``pretrain_size`` (its
    ``img_size``: the position embeddings' grid times the patch size)."""
    return dict(backbone['arch'], backbone_type=backbone['type'],
                patch_size=backbone['patch_size'],
                pretrain_size=backbone['img_size'])


def build_verified(backbone: dict, weights: Dict[str, Tensor],
                   where: str) -> nn.Module:
    """Build the mmpretrain backbone config ``backbone`` (``type`` with or
    without ``mmpretrain.``; ``init_cfg`` left out) and check that
    ``weights`` load into it exactly (no missing or unexpected key, no
    other shape).

    Raises:
        ValueError: The weights do not fit (the message names the keys).
    """
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401  (registers SplitMaskViT)
    from mm_instdisc.utils.selfsup_to_backbone import verify_backbone
    kind = backbone['type'].split('.')[-1]
    built = MODELS.get(kind)(**{k: v for k, v in backbone.items()
                                if k not in ('type', 'init_cfg')})
    verify_backbone(weights, built, where, backbone['type'])
    return built
