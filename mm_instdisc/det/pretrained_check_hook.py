"""Clear errors about pretrained weights before mmdet (or mmpretrain)
training starts.

* :class:`PretrainedCheckHook`: before any weight is initialised or loaded,
  every ``init_cfg=dict(type='Pretrained', checkpoint=...)`` of the model and
  the runner's ``load_from`` must name an existing file; an empty or missing
  one is an error naming the config key to set (mmengine would say only
  ``FileNotFoundError:  can not be found.``). A checkpoint whose weights
  under the init_cfg's prefix are of another architecture than the module
  (a ViT checkpoint for a ResNet backbone, or the reverse), or hold nothing
  under that prefix, is refused with the prefixes it does hold (mmengine
  would only warn about missing keys and train from random init).
* :func:`check_pretrained_cfg`: the same path check on a config, before
  anything is built (``mm-instdisc-det-train``, tools/det_train.py); both
  use :func:`check_checkpoint_path`.
"""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mm_instdisc.utils.checkpoint import read_checkpoint, unwrap_model
from mm_instdisc.utils.selfsup_to_backbone import (check_backbone_family,
                                                   get_state_dict,
                                                   list_prefixes)


def pretrained_checkpoints(module, prefix: str = 'model'):
    """(config key, checkpoint, init_cfg prefix, module) of every
    ``Pretrained`` init_cfg of a built model, e.g.
    ``('model.backbone.init_cfg.checkpoint', '', 'backbone.', backbone)``."""
    found = []
    for name, m in module.named_modules():
        cfgs = getattr(m, 'init_cfg', None)
        cfgs = cfgs if isinstance(cfgs, list) else [cfgs]
        for c in cfgs:
            if isinstance(c, dict) and c.get('type') == 'Pretrained':
                key = '.'.join(p for p in (prefix, name, 'init_cfg',
                                           'checkpoint') if p)
                found.append((key, str(c.get('checkpoint', '')),
                              c.get('prefix'), m))
    return found


def check_checkpoint_path(key: str, ckpt: str) -> None:
    """An empty ``Pretrained`` checkpoint is a ``ValueError`` naming the
    config key to set, a missing file a ``FileNotFoundError`` (URLs pass)."""
    if not ckpt:
        raise ValueError(
            f'{key} is empty: this config expects pretrained weights. '
            f'Pass --cfg-options {key}=PATH (a checkpoint of '
            'tools/model_converters/selfsup_to_backbone.py or a raw '
            'pretraining checkpoint), or set the init_cfg to None '
            'for a random-init baseline.')
    if '://' not in ckpt and not osp.isfile(ckpt):
        raise FileNotFoundError(
            f'{key}={ckpt!r} does not exist (working directory '
            f'{osp.abspath(".")}).')


def _pretrained_cfgs(node, path: str):
    """(dotted path, node) of every ``Pretrained`` init_cfg in a config."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained':
            yield path, node
        for key, value in node.items():
            yield from _pretrained_cfgs(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_cfgs(value, f'{path}[{i}]')


def check_pretrained_cfg(cfg) -> None:
    """:func:`check_checkpoint_path` on every ``Pretrained`` init_cfg of a
    config's ``model`` before anything is built (skipped when resuming);
    :class:`PretrainedCheckHook` checks the built model again, with the
    architecture."""
    if cfg.get('resume'):
        return
    for path, node in _pretrained_cfgs(cfg.model, 'model'):
        check_checkpoint_path(f'{path}.checkpoint',
                              str(node.get('checkpoint') or ''))


def check_architecture(key: str, ckpt: str, prefix, module) -> None:
    """Refuse a checkpoint whose weights (under ``prefix``) do not belong
    to ``module``'s architecture family (see the module docstring)."""
    state = get_state_dict(read_checkpoint(ckpt))
    if prefix:
        pre = prefix if prefix.endswith('.') else prefix + '.'
        weights = {k[len(pre):]: v for k, v in state.items()
                   if k.startswith(pre)}
    else:
        weights = state
    found = ', '.join(p for p, _, _ in list_prefixes(state, depth=2)[:12])
    if not weights:
        raise ValueError(
            f'{key}={ckpt!r} holds no weights under prefix {prefix!r}; its '
            f'prefixes: {found}. Convert it with mm-instdisc-convert (tools/'
            'model_converters/selfsup_to_backbone.py --list-prefixes shows '
            'them) or set init_cfg.prefix.')
    check_backbone_family(
        weights, module, f'{key}={ckpt!r}', type(module).__name__,
        f'prefixes: {found}', 'mmengine would only warn and train from '
        'random init; use a checkpoint of the same architecture.')


@HOOKS.register_module()
class PretrainedCheckHook(Hook):
    """Checks pretrained-weight paths before the runner initialises or loads
    weights (``before_run``); see the module docstring."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        for key, ckpt, prefix, module in pretrained_checkpoints(model):
            check_checkpoint_path(key, ckpt)
            if '://' not in ckpt:
                check_architecture(key, ckpt, prefix, module)
        load_from = getattr(runner, '_load_from', None)
        if load_from is not None and not getattr(runner, '_resume', False):
            if load_from == '' or ('://' not in load_from
                                   and not osp.isfile(load_from)):
                raise FileNotFoundError(
                    f'load_from={load_from!r} does not exist; set load_from '
                    '(--cfg-options load_from=PATH) to a checkpoint file or '
                    'to None.')
