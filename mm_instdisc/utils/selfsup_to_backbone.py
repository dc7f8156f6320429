"""Self-supervised checkpoint -> backbone-only weights for transfer.

A pretraining checkpoint of ours (mmengine ``.pth``) holds the whole
algorithm under ``state_dict``: ``backbone.*`` plus ``neck.*``, ``head.*``,
``memory_bank.*`` (NPID), ``negatives.*`` and ``encoder_k.*`` (AdCo), and so
on. Downstream models only want the backbone. :func:`selfsup_to_backbone`
keeps the keys under one prefix (``'backbone.'`` by default), strips it and
optionally adds an output prefix:

* ``out_prefix=''``: keys as the backbone module names them
  (``conv1.weight``); what ``backbone.load_state_dict(strict=True)`` and an
  ``init_cfg=dict(type='Pretrained', checkpoint=...)`` without prefix want.
* ``out_prefix='backbone.'``: keys as a whole detector / classifier names
  them; load with ``init_cfg=dict(..., prefix='backbone.')`` or as
  ``load_from`` of an mmdet / mmpretrain config.

The raw self-supervised checkpoint can also be given directly to
``init_cfg=dict(type='Pretrained', checkpoint=RAW, prefix='backbone.')``;
converting makes a small file that carries no optimizer state, memory bank
or pickled config, and checks that a backbone is there at all.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterable, List, Tuple

import torch
from torch import Tensor, nn

from .checkpoint import read_checkpoint

OUT_PREFIXES = ('', 'backbone.')


def _top_level_groups(keys: Iterable[str], limit: int = 12) -> List[str]:
    """The distinct first components of dotted keys, e.g. ``['head', 'neck']``."""
    groups = sorted({k.split('.', 1)[0] for k in keys})
    if len(groups) > limit:
        groups = groups[:limit] + [f'... ({len(groups) - limit} more)']
    return groups


def get_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The model weights of a loaded checkpoint.

    Accepts an mmengine checkpoint (weights under ``'state_dict'``), a
    ``{'model': ...}`` checkpoint (DeiT / MAE style) or a bare state dict.
    A ``module.`` prefix left by DDP on every key is removed.

    Raises:
        TypeError: ``checkpoint`` is not a dict of tensors.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError('Expected a checkpoint dict (mmengine .pth) or a state '
                        f'dict, got {type(checkpoint).__name__}.')
    state = checkpoint
    for field in ('state_dict', 'model'):
        if isinstance(checkpoint.get(field), dict):
            state = checkpoint[field]
            break
    tensors = OrderedDict((k, v) for k, v in state.items()
                          if isinstance(v, Tensor))
    if not tensors:
        raise TypeError('The checkpoint holds no tensors; its top-level keys '
                        f'are {sorted(checkpoint)[:12]}.')
    if all(k.startswith('module.') for k in tensors):
        tensors = OrderedDict((k[len('module.'):], v)
                              for k, v in tensors.items())
    return tensors


def backbone_family(weights: Dict[str, Tensor]) -> str:
    """``'vit'``, ``'resnet'`` or ``'unknown'``: the architecture family of
    backbone weights without prefix, from their key names.

    ViT (mmpretrain ``VisionTransformer``, SplitMask's ``SplitMaskViT``):
    ``patch_embed.*`` and ``layers.N.attn.*``; ResNet (``ResNet``,
    ``ResNet_CIFAR``, ``ResNetV1d``): ``layerN.M.conv1.weight``.
    """
    keys = list(weights)
    if any(k.startswith('patch_embed.') for k in keys) and any(
            '.attn.' in k for k in keys):
        return 'vit'
    if any(k.startswith('layer1.') and k.endswith('conv1.weight')
           for k in keys):
        return 'resnet'
    return 'unknown'


def list_prefixes(state_dict: Dict[str, Tensor],
                  depth: int = 3) -> List[Tuple[str, int, int]]:
    """Module prefixes of a state dict up to ``depth`` components, with
    their tensor and value counts: ``[('backbone.', 62, 11_172_032), ...]``.

    Prefixes whose sub-modules hold more than 16 distinct children (e.g.
    the layers of a ViT) are not split further.
    """
    counts: Dict[str, List[int]] = {}
    for key, value in state_dict.items():
        parts = key.split('.')[:-1]
        for d in range(1, min(depth, len(parts)) + 1):
            pre = '.'.join(parts[:d]) + '.'
            c = counts.setdefault(pre, [0, 0])
            c[0] += 1
            c[1] += value.numel()
    children: Dict[str, int] = {}
    for pre in counts:
        parent = pre[:-1].rpartition('.')[0]
        if parent:
            children[parent + '.'] = children.get(parent + '.', 0) + 1
    out = []
    for pre, (n, numel) in sorted(counts.items()):
        parent = pre[:-1].rpartition('.')[0]
        if parent and children.get(parent + '.', 0) > 16:
            continue
        out.append((pre, n, numel))
    return out


def selfsup_to_backbone(state_dict: Dict[str, Tensor],
                        src_prefix: str = 'backbone.',
                        out_prefix: str = '') -> 'OrderedDict[str, Tensor]':
    """Keep the backbone weights of a self-supervised state dict.

    Args:
        state_dict (dict[str, Tensor]): Weights of the whole algorithm, e.g.
            ``backbone.conv1.weight``, ``neck.fc.weight``,
            ``memory_bank.bank``.
        src_prefix (str): Keys under this prefix are the backbone's. Use e.g.
            ``'encoder_k.module.backbone.'`` for a momentum encoder.
            Defaults to ``'backbone.'``.
        out_prefix (str): ``''`` (keys as the backbone module names them) or
            ``'backbone.'`` (keys as a detector or classifier names them).
            Defaults to ``''``.

    Returns:
        OrderedDict[str, Tensor]: The backbone weights, in the input order,
        detached and contiguous.

    Raises:
        ValueError: ``out_prefix`` is not one of ``''``/``'backbone.'``,
            ``src_prefix`` does not end with a dot, or no key starts with
            ``src_prefix`` (the message names the key groups there are).
    """
    if out_prefix not in OUT_PREFIXES:
        raise ValueError(f'Illegal out_prefix: {out_prefix!r}; expected one '
                         f'of {OUT_PREFIXES}.')
    if not src_prefix.endswith('.'):
        raise ValueError(f'Illegal src_prefix: {src_prefix!r}; expected a '
                         "module path ending with '.', e.g. 'backbone.'.")
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(src_prefix):
            out[out_prefix + key[len(src_prefix):]] = (
                value.detach().contiguous())
    if not out:
        groups = _top_level_groups(state_dict)
        raise ValueError(
            f'No {src_prefix}* keys in the checkpoint: it has '
            f'{len(state_dict)} tensors under {groups}. Expected a '
            'self-supervised checkpoint of mm_instdisc/mmpretrain (with '
            "'backbone.' keys), or pass --src-prefix for another module.")
    return out


def backbone_meta(ckpt: dict, src: str, src_prefix: str, out_prefix: str,
                  arch: str) -> dict:
    """The ``meta`` of a backbone file written from checkpoint ``ckpt``
    (read from ``src``): where it came from, its prefixes and architecture
    family, and the epoch / iteration / versions / seed of ``ckpt['meta']``.
    """
    meta = dict(source=osp.abspath(src), src_prefix=src_prefix,
                out_prefix=out_prefix, converted_by='mm_instdisc', arch=arch)
    if isinstance(ckpt.get('meta'), dict):
        for field in ('epoch', 'iter', 'mmengine_version', 'seed'):
            if field in ckpt['meta']:
                meta[field] = ckpt['meta'][field]
    return meta


def convert_selfsup_checkpoint(src: str, dst: str,
                               src_prefix: str = 'backbone.',
                               out_prefix: str = '') -> Dict[str, Tensor]:
    """Read a self-supervised checkpoint file, write its backbone weights.

    The output is ``{'state_dict': weights, 'meta': {...}}``, which mmengine
    (``load_checkpoint``, ``init_cfg=dict(type='Pretrained')``) and
    ``torch.load(..., weights_only=True)`` both read.

    Args:
        src (str): Path of the self-supervised checkpoint.
        dst (str): Path of the file to write (folders are created).
        src_prefix (str): See :func:`selfsup_to_backbone`.
            Defaults to ``'backbone.'``.
        out_prefix (str): See :func:`selfsup_to_backbone`. Defaults to ``''``.

    Returns:
        dict[str, Tensor]: The weights written.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: See :func:`selfsup_to_backbone`.
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'Checkpoint not found: {src!r}.')
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError(f'Refusing to overwrite the input checkpoint {src!r}; '
                         'give another output path.')
    ckpt = read_checkpoint(src)
    weights = selfsup_to_backbone(get_state_dict(ckpt), src_prefix,
                                  out_prefix)
    meta = backbone_meta(
        ckpt, src, src_prefix, out_prefix,
        backbone_family({k[len(out_prefix):]: v
                         for k, v in weights.items()}))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=weights, meta=meta), dst)
    return weights


def check_backbone_keys(weights: Dict[str, Tensor],
                        backbone: nn.Module) -> Tuple[List[str], List[str]]:
    """Missing and unexpected keys of ``weights`` for ``backbone``.

    Shapes are compared too: a key whose tensor shape differs counts as
    both missing and unexpected (``strict=True`` loading would fail on it).

    Args:
        weights (dict[str, Tensor]): Backbone weights without prefix.
        backbone (nn.Module): The module to load them into.

    Returns:
        tuple[list[str], list[str]]: Missing keys, unexpected keys.
    """
    target = backbone.state_dict()
    missing = [k for k in target
               if k not in weights or weights[k].shape != target[k].shape]
    unexpected = [k for k in weights
                  if k not in target or weights[k].shape != target[k].shape]
    return missing, unexpected


def check_backbone_family(weights: Dict[str, Tensor], module: nn.Module,
                          where: str, module_type: str, holds: str,
                          advice: str) -> None:
    """Refuse weights of another architecture family than ``module``'s.

    The one family check (:func:`backbone_family`: a ViT checkpoint for a
    ResNet, or the reverse) of :func:`verify_backbone` and of
    ``PretrainedCheckHook``; an unknown family on either side passes.

    Args:
        weights (dict[str, Tensor]): Backbone weights without prefix.
        module (nn.Module): The module they are meant for.
        where (str): What is being checked, for the message.
        module_type (str): The module's (config) type, for the message.
        holds (str): What the checkpoint holds, for the message.
        advice (str): The message's last sentence: what to do.

    Raises:
        ValueError: The families differ (both are named).
    """
    have = backbone_family(weights)
    want = backbone_family(module.state_dict())
    if 'unknown' not in (have, want) and have != want:
        raise ValueError(
            f'{where}: architecture mismatch: the checkpoint holds a {have} '
            f'backbone ({holds}), the config builds a {want} ({module_type}). '
            + advice)


def verify_backbone(weights: Dict[str, Tensor], backbone: nn.Module,
                    where: str, backbone_type: str,
                    allow_missing: Iterable[str] = ()) -> List[str]:
    """Refuse backbone weights that do not fit ``backbone`` exactly.

    The check of the converter's ``--verify CONFIG`` and of
    ``mm-instdisc-det-train``: the architecture families must agree (a ViT
    checkpoint for a ResNet, or the reverse, is named as such), then there
    must be no missing or unexpected keys and no shape mismatch.

    Args:
        weights (dict[str, Tensor]): Backbone weights without prefix.
        backbone (nn.Module): The module they are meant for.
        where (str): What is being checked, for the messages (e.g.
            ``'--verify CONFIG'``).
        backbone_type (str): The module's config type, for the messages.
        allow_missing (Iterable[str]): fnmatch patterns of target keys the
            weights may lack (they keep their fresh initialisation).
            Defaults to ().

    Returns:
        list[str]: The target keys that were allowed to be missing.

    Raises:
        ValueError: Architecture mismatch, or missing / unexpected keys.
    """
    import fnmatch
    check_backbone_family(
        weights, backbone, where, backbone_type,
        f'{len(weights)} tensors, e.g. {list(weights)[:3]}',
        'Converted weights would not load; use the checkpoint with a config '
        'of its own architecture.')
    missing, unexpected = check_backbone_keys(weights, backbone)
    patterns = tuple(allow_missing)
    allowed = [k for k in missing if k not in weights and any(
        fnmatch.fnmatchcase(k, p) for p in patterns)]
    missing = [k for k in missing if k not in allowed]
    if missing or unexpected:
        hint = ('' if unexpected or any(k in weights for k in missing) else
                ' If the target adds these layers on purpose (they keep '
                'their fresh initialisation), pass --allow-missing with '
                'their patterns.')
        raise ValueError(
            f'{where}: the weights do not match model.backbone '
            f'({backbone_type}): {len(missing)} missing, e.g. '
            f'{missing[:5]}; {len(unexpected)} unexpected, e.g. '
            f'{unexpected[:5]}.{hint}')
    return allowed
