"""Classification on your own labelled folder (one sub-folder per class):
the linear-probe and fine-tuning configs of
``configs/benchmarks/classification/custom/`` filled in from the folders and
a pretraining checkpoint (``mm-instdisc-cls-train``).

* :func:`read_labelled_folder` lists a folder with one sub-folder per class
  (as ``ImageFolderDataset(with_label=True)`` reads it) and refuses a folder
  without class sub-folders.
* :func:`classifier_backbone` reads the backbone of a pretraining
  checkpoint (a ResNet's type, depth, widths, input channels from the
  weights, strides and style from the config the checkpoint carries; a
  ViT's width, depth, heads, patch size, position-embedding grid, input
  channels), checks that the backbone so described loads the weights
  exactly, and gives its config. A ViT (SplitMask's) gets the configs of
  :data:`VIT_MODE_CONFIGS`, which swap it into the ResNet configs.
* :func:`write_cls_config` writes the filled-in config into the work dir,
  as :func:`mm_instdisc.own_data.write_folder_config` does for pretraining
  and :func:`mm_instdisc.det.own_coco.write_det_config` for detection: the
  mode's config and the configs beside it that it inherits
  (:func:`config_chain`: the fine-tuning config inherits the linear probe's,
  which holds the data block; a ViT config the mode's ResNet config), each
  filled in where its block lines are and written with its ``_base_``
  pointing at the filled-in file.
"""
import ast
import os
import os.path as osp
import re
from typing import Dict, List, Optional

import numpy as np

from mm_instdisc.own_data import _set_var
from mm_instdisc.pretrained_backbone import VIT_EXTRA_KEYS, vit_config_vars

#: --mode -> its config below configs/
MODE_CONFIGS: Dict[str, str] = {
    'probe': 'benchmarks/classification/custom/'
             'resnet18-w32_linear-probe_custom',
    'finetune': 'benchmarks/classification/custom/'
                'resnet18-w32_finetune_custom',
}
#: --mode -> its config for a ViT (SplitMask's), whose ``_base_`` is the
#: mode's config above (the data, schedule and head); the fine-tuning
#: config's ``_base_`` is the probe's, which holds the data block
VIT_MODE_CONFIGS: Dict[str, str] = {
    'probe': 'benchmarks/classification/custom/'
             'splitmask-vit_linear-probe_custom',
    'finetune': 'benchmarks/classification/custom/'
                'splitmask-vit_finetune_custom',
}
#: mmpretrain ResNets the classification configs take
RESNET_TYPES = ('ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNet_CIFAR')
#: keys of the pretraining config's backbone that shape it
ARCH_KEYS = ('strides', 'dilations', 'style', 'avg_down', 'deep_stem',
             'num_stages')
DEFAULT_EPOCHS = {'probe': 50, 'finetune': 100}


def read_labelled_folder(root: str) -> dict:
    """The classes and labels of a folder with one sub-folder per class.

    Args:
        root (str): The folder; each sub-folder is a class (its name), with
            images anywhere below it.

    Returns:
        dict: ``classes`` (sub-folder names, sorted, as the data set
        numbers them), ``labels`` (int array, one per image),
        ``num_images``, ``per_class`` (images per class).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: No class sub-folders, fewer than 2 classes, or no
            images in them.
    """
    from mm_instdisc.datasets.image_folder import ImageFolderDataset
    if not osp.isdir(root):
        raise FileNotFoundError(f'{root!r} is not a folder.')
    subdirs = sorted(d for d in os.listdir(root)
                     if osp.isdir(osp.join(root, d)))
    if not subdirs:
        raise ValueError(
            f'{root!r} has no sub-folders: expected one sub-folder per class '
            f'({root}/<class>/<image>), e.g. {root}/cat/1.png, '
            f'{root}/dog/2.png.')
    ds = ImageFolderDataset(data_root=root, with_label=True, check=False,
                            img_size=32, serialize_data=False)
    classes = tuple(ds.metainfo['classes'])
    labels = np.asarray(ds.get_gt_labels(), dtype=np.int64)
    per_class = np.bincount(labels, minlength=len(classes))
    if len(classes) < 2 or (per_class > 0).sum() < 2:
        raise ValueError(
            f'{root!r}: {int((per_class > 0).sum())} class sub-folder(s) with '
            f'images ({list(classes)}); expected at least 2 classes, one '
            'sub-folder each.')
    return dict(classes=classes, labels=labels, num_images=len(labels),
                per_class=[int(n) for n in per_class])


def classifier_backbone(checkpoint: str,
                        num_heads: Optional[int] = None) -> dict:
    """The classifier backbone for a pretraining checkpoint.

    Read by :func:`mm_instdisc.pretrained_backbone.\
read_pretrained_backbone` (the weights and the config the checkpoint
    carries): a ResNet's type, depth, widths, input channels, strides and
    style, or a ViT's (SplitMask's ``SplitMaskViT``) width, depth, heads,
    FFN, patch size, position-embedding grid and input channels
    (:func:`~mm_instdisc.pretrained_backbone.vit_backbone_config`).
    The backbone so described is built and must load the weights exactly.

    Args:
        checkpoint (str): A pretraining checkpoint (``backbone.*`` keys) or
            a converted backbone file (``mm-instdisc-convert``).
        num_heads (int, optional): A ViT's attention heads (no weight shape
            holds them); None: from the checkpoint's config. Defaults to
            None.

    Returns:
        dict: ``arch`` (``'resnet'`` / ``'vit'``), ``backbone`` (config
        keys; a ResNet: ``type``, ``depth``, ``in_channels``,
        ``stem_channels``, ``base_channels`` and the :data:`ARCH_KEYS` the
        pretraining config sets; a ViT: ``type``, ``arch``, ``img_size``,
        ``patch_size``, ``in_channels`` and :data:`~mm_instdisc.utils.\
pretrained_backbone.VIT_EXTRA_KEYS`),
        ``prefix`` (``'backbone.'``, or None for a converted file),
        ``mean`` / ``std`` (the pretraining normalisation, or None),
        ``info`` (:func:`mm_instdisc.utils.export.describe_backbone`).

    Raises:
        FileNotFoundError: No such file.
        ValueError: No backbone in it, another architecture than the
            configs' ResNets and ViTs, a ViT whose heads are unknown, or
            weights that do not fit the backbone described.
    """
    from mm_instdisc.pretrained_backbone import (build_verified,
                                                 read_pretrained_backbone,
                                                 vit_backbone_config)
    from mm_instdisc.utils.export import summary
    where = f'--checkpoint {checkpoint}'
    read = read_pretrained_backbone(checkpoint, num_heads)
    info, cfg = read['info'], read['cfg']
    if info['arch'] == 'vit':
        backbone = vit_backbone_config(info, cfg, where)
    elif info['type'] not in RESNET_TYPES or info['depth'] is None:
        raise ValueError(
            f'{where}: architecture mismatch: it holds {summary(info)}; the '
            'classification configs (configs/benchmarks/classification/'
            f'custom/) take an mmpretrain {"/".join(RESNET_TYPES)} of depth '
            '18, 34, 50, 101 or 152, or a ViT (SplitMaskViT).')
    else:
        backbone = dict(type=info['type'], depth=info['depth'],
                        in_channels=info['in_channels'],
                        stem_channels=info['stem_channels'],
                        base_channels=info['base_channels'])
        backbone.update({k: cfg[k] for k in ARCH_KEYS if k in cfg})
    build_verified(backbone, read['weights'], where)
    return dict(arch=info['arch'], backbone=backbone, prefix=read['prefix'],
                info=info, mean=read['mean'], std=read['std'])


def subset_size(per_class, fraction: Optional[float]) -> int:
    """Images of a stratified ``fraction`` of classes of ``per_class``
    images (``ClassBalancedSubset(mode='stratified')``); all for None."""
    if fraction is None:
        return int(sum(per_class))
    return int(sum(min(n, max(1, int(round(fraction * n))))
                   for n in per_class if n > 0))


_BASE_LINE = re.compile(r'^_base_ = (.*)$', re.M)


def _bases(text: str, src: str) -> List[str]:
    """The ``_base_`` list of the config ``src`` (one line in these
    configs)."""
    found = _BASE_LINE.search(text)
    if not found:
        return []
    bases = ast.literal_eval(found.group(1))
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list):
        raise ValueError(f'{src}: _base_ = {found.group(1)}; expected a '
                         'file name or a list of them on one line.')
    return bases


def config_chain(name: str) -> List[str]:
    """The shipped config ``name`` and the configs beside it (``_base_``
    entries ``'./...'``) that it inherits, the first inherited first.

    Args:
        name (str): A config below configs/ (:func:`mm_instdisc.configs.\
get_config`), e.g. ``MODE_CONFIGS['finetune']``.

    Returns:
        list[str]: Absolute paths, each the ``_base_`` of the next, ending
        with ``name``'s, e.g. the probe's, the fine-tuning config's.

    Raises:
        ValueError: A config inherits more than one config beside it.
    """
    from mm_instdisc.configs import get_config
    chain = [get_config(name)]
    while True:
        with open(chain[0]) as f:
            near = [b for b in _bases(f.read(), chain[0])
                    if b.startswith('./')]
        if not near:
            return chain
        if len(near) > 1:
            raise ValueError(f'{chain[0]} inherits {near}; expected at most '
                             'one config beside it.')
        chain.insert(0, osp.normpath(osp.join(osp.dirname(chain[0]),
                                              near[0])))


def _has_var(text: str, name: str) -> bool:
    """Whether a config has the top-level line ``name = ...``."""
    return re.search(rf'^{re.escape(name)} = ', text, re.M) is not None


def write_config_chain(chain: List[str], work_dir: str, values: dict,
                       extra: Optional[Dict[int, List[str]]] = None) -> str:
    """Write the configs of ``chain`` (:func:`config_chain`) filled in into
    ``work_dir``; returns the last one's path.

    Each value is set where it takes effect: in the last config of the chain
    with a line ``name = ...`` (the fine-tuning config's ``max_epochs``, the
    probe's data block, a ViT config's ``backbone_type``). Every ``_base_``
    of a written config names a file that exists: the config before it in
    the chain as written into ``work_dir``, any other (``_base_/``) the
    shipped file.

    Args:
        chain (list[str]): Shipped configs, each the ``_base_`` of the next.
        work_dir (str): Where they are written (under their own names).
        values (dict): Block variable -> its value (written with ``repr``).
        extra (dict, optional): Index in ``chain`` -> lines appended to
            that config. Defaults to None.

    Returns:
        str: The last config written.

    Raises:
        KeyError: A value whose line none of the configs has.
    """
    texts = []
    for src in chain:
        with open(src) as f:
            texts.append(f.read())
    for name, value in values.items():
        where = [i for i, text in enumerate(texts) if _has_var(text, name)]
        if not where:
            raise KeyError(f'None of {chain} has a line "{name} = ...".')
        texts[where[-1]] = _set_var(texts[where[-1]], name, value)
    os.makedirs(work_dir, exist_ok=True)
    extra = extra or {}
    out = None
    for i, (src, text) in enumerate(zip(chain, texts)):
        bases = [out if i and b == './' + osp.basename(chain[i - 1]) else
                 osp.normpath(osp.join(osp.dirname(src), b))
                 for b in _bases(text, src)]
        if bases:
            text = _BASE_LINE.sub(lambda _: f'_base_ = {bases!r}', text,
                                  count=1)
        lines = extra.get(i, [])
        out = osp.abspath(osp.join(work_dir, osp.basename(src)))
        with open(out, 'w') as f:
            f.write(text.rstrip() + '\n' +
                    ('\n' + '\n'.join(lines) + '\n' if lines else ''))
    return out


def write_cls_config(train: str, val: str, checkpoint: str, work_dir: str,
                     mode: str = 'probe', fraction: Optional[float] = None,
                     epochs: Optional[int] = None,
                     size: Optional[int] = None,
                     batch_size: Optional[int] = None, seed: int = 0,
                     workers: int = 2,
                     num_heads: Optional[int] = None) -> str:
    """Write the classification config of ``mode`` filled in from the
    labelled folders and the checkpoint into ``work_dir``; returns its path.

    The configs it inherits are written next to it
    (:func:`write_config_chain`): fine-tuning's ``_base_`` is the linear
    probe's config, which holds the data block. A ViT checkpoint
    (SplitMask's) gets the config of :data:`VIT_MODE_CONFIGS`, whose
    ``_base_`` is the mode's ResNet config filled in with the data, the
    ViT's block filled in from the checkpoint.

    Args:
        train (str): Training folder, one sub-folder per class.
        val (str): Validation folder, the same class sub-folders.
        checkpoint (str): Pretraining checkpoint (or converted backbone):
            the backbone's architecture (a ResNet or a ViT) and weights.
        work_dir (str): Where the config is written.
        mode (str): ``'probe'`` (frozen backbone, linear head) or
            ``'finetune'`` (the whole network). Defaults to ``'probe'``.
        fraction (float, optional): Train on this share of every class, in
            (0, 1] (seeded with ``seed``); None: the whole folder.
        epochs (int, optional): None: 50 for the probe, 100 fine-tuning.
        size (int, optional): Image side; None: from the training images
            (a multiple of 32, at most 96 on a CPU, 224 on a GPU), for a
            ViT its pretraining image side. A ViT's must be a multiple of
            its patch size (the position embeddings are resized to it).
        batch_size (int, optional): None: 64, or less for a small folder.
        seed (int): ``randomness.seed`` and the subset's seed. Defaults
            to 0.
        workers (int): Data loader workers. Defaults to 2.
        num_heads (int, optional): A ViT's attention heads, for a
            checkpoint without its pretraining config. Defaults to None.

    Returns:
        str: The mode's config written (for a ViT the ViT config), whose
        ``_base_`` chain are the filled-in configs next to it.

    Raises:
        ValueError, FileNotFoundError: Bad arguments, folders or
            checkpoint, before anything trains.
    """
    from mm_instdisc.own_data import inspect_folder
    if mode not in MODE_CONFIGS:
        raise ValueError(f'Unknown mode {mode!r}; expected one of '
                         f'{sorted(MODE_CONFIGS)}.')
    if fraction is not None and not (isinstance(fraction, (int, float))
                                     and 0 < fraction <= 1):
        raise ValueError(f'Illegal fraction: {fraction!r}; expected a share '
                         'in (0, 1], e.g. 0.01 for 1% or 0.1 for 10%.')
    for name, v in (('epochs', epochs), ('batch_size', batch_size),
                    ('size', size)):
        if v is not None and int(v) < 1:
            raise ValueError(f'Illegal {name}: {v}; expected >= 1.')
    if int(workers) < 0:
        raise ValueError(f'Illegal workers: {workers}; expected >= 0.')
    tr = read_labelled_folder(train)
    va = read_labelled_folder(val)
    if va['classes'] != tr['classes']:
        raise ValueError(
            f'--val {val!r} has the class sub-folders {list(va["classes"])}'
            f', --train {train!r} {list(tr["classes"])}; expected the same '
            'names.')
    net = classifier_backbone(checkpoint, num_heads)
    backbone = net['backbone']
    channels = backbone['in_channels']
    is_vit = net['arch'] == 'vit'
    if is_vit:
        patch = backbone['patch_size']
        size = int(size or backbone['img_size'])
        if size % patch:
            raise ValueError(
                f'Illegal size {size} for {checkpoint}: its ViT has '
                f'{patch}x{patch} patches; expected a multiple of {patch} '
                f'(it was pretrained at {backbone["img_size"]} px).')
    n = subset_size(tr['per_class'], fraction)
    bs = int(batch_size
             or min(64, max(2, 2**int(np.log2(max(n // 4, 1))))))
    if n < max(bs, 2):
        share = f'fraction {fraction} of ' if fraction else ''
        raise ValueError(
            f'{n} training image(s) ({share}{tr["num_images"]} below '
            f'{train!r}): fewer than one batch of {max(bs, 2)}; use a larger '
            'fraction or --batch-size.')
    mean, std = net['mean'], net['std']
    need_stats = mean is None
    info = inspect_folder(train, with_label=True, size=size) \
        if need_stats or size is None else None
    size = int(size or info['size'])
    if need_stats:  # the pretraining normalisation is unknown
        mean, std = info['mean'], info['std']
        if len(mean) != channels:
            mean = [float(np.mean(mean))] * channels
            std = [float(np.mean(std))] * channels
    max_epochs = int(epochs or DEFAULT_EPOCHS[mode])

    values = dict(
        train_root=osp.abspath(train), val_root=osp.abspath(val),
        img_size=size, channels=channels, num_classes=len(tr['classes']),
        checkpoint=osp.abspath(checkpoint), checkpoint_prefix=net['prefix'],
        mean=mean, std=std,
        fraction=None if fraction is None else float(fraction),
        max_epochs=max_epochs, batch_size=bs, seed=int(seed))
    if is_vit:  # the ViT's block is in the ViT config
        values.update(vit_config_vars(backbone))
    else:
        values.update((k, backbone[k]) for k in (
            'depth', 'stem_channels', 'base_channels'))
        values['backbone_type'] = backbone['type']
    extra_keys = {k: backbone[k] for k in (VIT_EXTRA_KEYS if is_vit else
                                           ARCH_KEYS) if k in backbone}
    backbone_line = f"model['backbone'].update({extra_keys!r})"
    iters = max(1, max_epochs * (n // bs))
    data_extra = [
        f'# filled in by mm-instdisc-cls-train from {osp.abspath(train)} '
        f'({tr["num_images"]} images, {len(tr["classes"])} classes'
        + (f'; fraction {fraction}: {n} images' if fraction else '')
        + f') and {osp.abspath(checkpoint)}'
        + ('' if not need_stats else '; mean / std of the training images'),
        f'classes = {tr["classes"]!r}',
        f"default_hooks['logger']['interval'] = {min(10, iters)}",
    ] + ([] if is_vit else [backbone_line])
    for loader in ('train_dataloader', 'val_dataloader'):
        data_extra.append(f"{loader}.update(num_workers={int(workers)}, "
                          f"persistent_workers={int(workers) > 0})")
    chain = config_chain((VIT_MODE_CONFIGS if is_vit else MODE_CONFIGS)[mode])
    extra = {0: data_extra}  # the data block's config, the probe's
    if is_vit:
        extra[len(chain) - 1] = [
            '# filled in by mm-instdisc-cls-train from '
            f'{osp.abspath(checkpoint)}', backbone_line]
    return write_config_chain(chain, work_dir, values, extra)
