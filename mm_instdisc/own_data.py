"""Pretraining on a folder of your own images: the config of a method,
filled in from the data (``mm-instdisc-train METHOD --data DIR``).

Each method has one folder config (``configs/<method>/*_custom.py``) whose
first block holds the settings that follow from the data: ``data_root``,
``img_size``, ``channels``, ``mean`` / ``std`` (and SplitMask's
``patch_size``), with every key that depends on them computed from them in
the config itself. :func:`write_folder_config` looks at the folder, writes
a copy of that config with the block filled in (plus what the data set's
length decides: MoCo's and Exemplar's queue, NPID's softmax over the bank,
the batch size) into the work dir, and returns its path: a config that
mmpretrain's tools/train.py, tools/dist_train.sh and ours run as it is.
"""
import os
import os.path as osp
import re
from typing import Dict, Optional

import numpy as np

from mm_instdisc.configs import get_config

#: method -> its folder config (name as ``mm_instdisc.configs.get_config``)
METHOD_CONFIGS: Dict[str, str] = {
    'npid': 'npid/npid_resnet18-w32_1xb128-bf16-coslr-100e_custom',
    'mocov2': 'mocov2/mocov2_resnet18-w32_1xb128-bf16-coslr-100e_custom',
    'adco': 'adco/adco_resnet18-w32_1xb128-bf16-coslr-100e_custom',
    'exemplar': ('exemplar/exemplar-v2_resnet18-w32_1xb128-bf16-coslr-100e_'
                 'custom'),
    'splitmask': 'splitmask/splitmask_vit-w64d4-p8_1xb128-bf16-coslr-100e_'
                 'custom',
    'rotation': ('pretext/rotation-pred_resnet18-w32_1xb128-bf16-coslr-100e_'
                 'custom'),
    'relative-loc': ('pretext/relative-loc_resnet18-w32_1xb128-bf16-coslr-'
                     '100e_custom'),
    'jigsaw': 'pretext/jigsaw_resnet18-w32_1xb128-bf16-coslr-100e_custom',
    'colorization': ('pretext/colorization_resnet18-w32-d8_1xb128-bf16-'
                     'coslr-100e_custom'),
    'masked-intensity': ('pretext/masked-intensity_resnet18-w32_1xb128-bf16-'
                         'coslr-100e_custom'),
}
#: methods that read a class per image (one sub-folder per class)
LABELLED = ('exemplar', )
#: methods whose input is fixed by the task (colour target / grey input)
FIXED_CHANNELS = {'colorization': 3, 'masked-intensity': 1}
SOFTMAX_MAX_ROWS = 100_000  # exact softmax over the bank up to this N


def inspect_folder(data: str, with_label: bool = False,
                   size: Optional[int] = None, sample: int = 256,
                   seed: int = 0) -> dict:
    """What a folder config needs to know about a folder of images.

    Lists the images (as the data set does) and decodes a seeded sample of
    up to ``sample`` of them.

    Args:
        data (str): The folder.
        with_label (bool): One sub-folder per class. Defaults to False.
        size (int, optional): The side the images are resized to for the
            mean / std; None uses the default size chosen here.
        sample (int): Images decoded for the statistics. Defaults to 256.
        seed (int): Seed of the sample. Defaults to 0.

    Returns:
        dict: ``num_images``, ``channels`` (3 if any sampled image is in
        colour, else 1), ``short_side`` (median of the sample's shorter
        sides), ``mean`` and ``std`` per channel (0-255, of the sample at
        ``size``), ``num_classes`` (with labels).
    """
    from PIL import Image

    from mm_instdisc.datasets.image_folder import (ImageFolderDataset,
                                                   is_colour, read_image)
    ds = ImageFolderDataset(data_root=data, with_label=with_label,
                            check=False, img_size=32, serialize_data=False)
    paths = [d['img_path'] for d in ds.data_list]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(paths), min(sample, len(paths)), replace=False)
    colour, sides = False, []
    for i in pick:
        try:
            with Image.open(paths[i]) as img:
                colour |= is_colour(img.mode)
                sides.append(min(img.size))
        except Exception:  # the data set's check names bad files
            continue
    channels = 3 if colour else 1
    short = int(np.median(sides)) if sides else 0
    size = size or default_size(short)
    pixels = []
    for i in pick:
        try:
            img, _ = read_image(paths[i], size, channels)
        except ValueError:
            continue
        pixels.append(img.reshape(-1, channels).astype(np.float64))
    if not pixels:
        raise ValueError(f'None of the {len(pick)} sampled files below '
                         f'{data!r} is a readable image.')
    px = np.concatenate(pixels)
    out = dict(num_images=len(paths), channels=channels, short_side=short,
               size=size, mean=[round(float(v), 3) for v in px.mean(0)],
               std=[round(max(float(v), 1.0), 3) for v in px.std(0)])
    if with_label:
        out['num_classes'] = len(ds.metainfo.get('classes', ()))
    return out


def default_size(short_side: int, gpu: Optional[bool] = None) -> int:
    """A multiple of 32 no larger than the images: at most 96 on a CPU,
    224 on a GPU."""
    if gpu is None:
        import torch
        gpu = torch.cuda.is_available()
    cap = 224 if gpu else 96
    return max(32, min(cap, short_side // 32 * 32 if short_side else cap))


def _set_var(text: str, name: str, value) -> str:
    """Replace the top-level assignment ``name = ...`` of a config."""
    pattern = re.compile(rf'^{re.escape(name)} = .*$', re.M)
    if not pattern.search(text):
        raise KeyError(f'The folder config has no line "{name} = ...".')
    return pattern.sub(lambda _: f'{name} = {value!r}', text, count=1)


def write_folder_config(method: str, data: str, work_dir: str,
                        size: Optional[int] = None,
                        channels: Optional[int] = None,
                        epochs: Optional[int] = None,
                        batch_size: Optional[int] = None,
                        skip_bad: bool = False,
                        seed: int = 0,
                        info: Optional[dict] = None) -> str:
    """Write ``METHOD``'s folder config, filled in from the folder ``data``,
    as ``work_dir/<config name>.py``; returns its path.

    Args:
        method (str): One of :data:`METHOD_CONFIGS`.
        data (str): The image folder (one sub-folder per class for
            Exemplar).
        work_dir (str): Where the config is written.
        size (int, optional): Image side; None: from the images (a multiple
            of 32, at most 96 on a CPU, 224 on a GPU).
        channels (int, optional): 1 or 3; None: from the images (fixed for
            colorization, 3, and masked intensity, 1).
        epochs (int, optional): Epochs; None keeps the config's.
        batch_size (int, optional): None: 128, or less for a small folder.
        skip_bad (bool): Leave unreadable files out. Defaults to False.
        seed (int): ``randomness.seed``. Defaults to 0.
        info (dict, optional): :func:`inspect_folder`'s result, if known.

    Returns:
        str: The config file written.
    """
    if method not in METHOD_CONFIGS:
        raise ValueError(f'Unknown method {method!r}; expected one of '
                         f'{sorted(METHOD_CONFIGS)}.')
    if not osp.isdir(data):
        raise FileNotFoundError(f'--data {data!r} is not a folder.')
    if channels not in (None, 1, 3):
        raise ValueError(f'Illegal channels: {channels!r}; expected 1 or 3.')
    if method in FIXED_CHANNELS:
        if channels not in (None, FIXED_CHANNELS[method]):
            raise ValueError(f'{method} needs channels='
                             f'{FIXED_CHANNELS[method]}, got {channels}.')
        channels = FIXED_CHANNELS[method]
    info = info or inspect_folder(data, method in LABELLED, size)
    channels = channels or info['channels']
    size = int(size or info['size'])
    multiple = 8 if method == 'splitmask' else 32
    if size <= 0 or size % multiple:
        raise ValueError(f'Illegal size {size}: {method} needs a multiple '
                         f'of {multiple}.')
    n = info['num_images']
    # 128, or a power of two near a quarter of a small folder (>= 8)
    bs = int(batch_size
             or min(128, max(8, 2**int(np.log2(max(n // 4, 1))))))
    if n < bs:
        raise ValueError(f'{n} images below {data!r}: fewer than one batch '
                         f'of {bs} (--batch-size).')
    mean, std = info['mean'], info['std']
    if len(mean) != channels:  # statistics of the other channel count
        mean = [float(np.mean(mean))] * channels
        std = [float(np.mean(std))] * channels
    src = get_config(METHOD_CONFIGS[method])
    with open(src) as f:
        text = f.read()
    text = text.replace("_base_ = './", "_base_ = '" + osp.dirname(src) + '/')
    text = _set_var(text, 'data_root', osp.abspath(data))
    text = _set_var(text, 'img_size', size)
    text = _set_var(text, 'channels', channels)
    text = _set_var(text, 'mean', mean)
    text = _set_var(text, 'std', std)
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f'Illegal epochs: {epochs}; expected >= 1.')
        text = _set_var(text, 'max_epochs', int(epochs))
    if method == 'splitmask':
        text = _set_var(text, 'patch_size', 8 if size <= 128 else 16)
    extra = [f'# filled in by mm-instdisc-train from {osp.abspath(data)}: '
             f'{n} images',
             f"train_dataloader['batch_size'] = {bs}",
             f"train_dataloader['dataset']['skip_bad'] = {bool(skip_bad)}",
             f'randomness = dict(seed={int(seed)}, diff_rank_seed=True)']
    if method in ('mocov2', 'exemplar'):
        # a key of the same image must not be its own negative: the queue
        # stays below the number of images, a multiple of the batch
        queue = max(bs, min(4096, (n - bs) // bs * bs))
        extra.append(f"model['queue_len'] = {queue}")
    if method == 'npid' and n > SOFTMAX_MAX_ROWS:
        extra.append("model['head']['loss'].update(mode='sampled_softmax', "
                     "num_negatives=8192, shared_negatives=True)")
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, osp.basename(src))
    with open(out, 'w') as f:
        f.write(text.rstrip() + '\n\n' + '\n'.join(extra) + '\n')
    return out


def apply_run_options(cfg, minutes: Optional[float] = None,
                      val: Optional[str] = None,
                      init: Optional[str] = None):
    """The run options of ``mm-instdisc-train METHOD``, applied to a loaded
    folder config.

    Args:
        cfg (Config): The config.
        minutes (float, optional): Wall-time budget: the schedule (warm-up
            + cosine) is fitted to it on the host (``TimeBudgetTrainLoop``).
        val (str, optional): A small labelled folder (one sub-folder per
            class): leave-one-out kNN accuracy in the monitoring.
        init (str, optional): A torchvision / timm / mmpretrain weights
            file for the backbone (``ConvertedPretrained`` initialisation).

    Returns:
        Config: The config with the options applied (a copy with a budget).
    """
    if minutes is not None:
        from mm_instdisc.engine.loops import apply_time_budget
        cfg = apply_time_budget(cfg, minutes)
    if val is not None:
        if not osp.isdir(val):
            raise FileNotFoundError(f'--val {val!r} is not a folder.')
        ds = cfg.train_dataloader.dataset
        val_dataset = dict(type='ImageFolderDataset', data_root=osp.abspath(
            val), with_label=True, img_size=ds.img_size, channels=ds.channels,
                           pipeline=[dict(type='PackInputs')])
        hooks = [h for h in cfg.custom_hooks
                 if h.get('type') == 'LabelFreeMonitorHook']
        if not hooks:
            cfg.custom_hooks.append(dict(type='LabelFreeMonitorHook'))
            hooks = cfg.custom_hooks[-1:]
        hooks[0]['val_dataset'] = val_dataset
    if init is not None:
        if not osp.isfile(init):
            raise FileNotFoundError(f'--init {init!r} is not a file.')
        match_backbone_to_weights(cfg, init)
        cfg.model.backbone.init_cfg = dict(type='ConvertedPretrained',
                                           checkpoint=osp.abspath(init))
    return cfg


def _resnet_out_channels(depth_block: str, base_channels: int) -> int:
    return base_channels * 8 * (4 if depth_block == 'Bottleneck' else 1)


def match_backbone_to_weights(cfg, path: str) -> dict:
    """Make a folder config's ResNet the architecture of a weights file
    (torchvision, timm or mmpretrain names): depth, stem, widths and input
    channels; the neck's and head's ``in_channels`` / ``hid_channels``
    follow the new output width. In place.

    Returns:
        dict: The file's architecture (``describe_backbone``).

    Raises:
        ValueError: The file holds a ViT and the config a ResNet (or the
            reverse), or its input channels differ from the data's.
    """
    from mm_instdisc.utils.backbone_formats import read_backbone_weights
    from mm_instdisc.utils.export import describe_backbone
    state, _, _, _ = read_backbone_weights(path)
    info = describe_backbone(state)
    bb = cfg.model.backbone
    ours = 'vit' if 'ViT' in bb.type or 'Vision' in bb.type else 'resnet'
    if info['arch'] != ours:
        raise ValueError(f'--init {path} holds {info["arch"]} weights, the '
                         f'{bb.type} of this method needs {ours} weights.')
    if info['in_channels'] != bb.get('in_channels', 3):
        raise ValueError(
            f'--init {path} takes {info["in_channels"]}-channel images, the '
            f'data (or --channels) gives {bb.get("in_channels", 3)}; pass '
            f'--channels {info["in_channels"]}.')
    if ours != 'resnet' or info.get('depth') is None:
        return info
    old_out = _resnet_out_channels(
        'Bottleneck' if bb.get('depth', 18) >= 50 else 'BasicBlock',
        bb.get('base_channels', 64))
    bb.depth = info['depth']
    bb.base_channels = info['base_channels']
    if info.get('deep_stem'):
        bb.type = info['type']
    bb.stem_channels = info['stem_channels']
    new_out = _resnet_out_channels(info['block'], info['base_channels'])

    def scale(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ('in_channels', 'hid_channels') and isinstance(
                        v, int) and v % old_out == 0:
                    node[k] = v // old_out * new_out
                else:
                    scale(v)
        elif isinstance(node, list):
            for v in node:
                scale(v)

    for part in ('neck', 'head'):
        if part in cfg.model:
            scale(cfg.model[part])
    return info
