"""Reading checkpoint files and reaching a wrapped model.

Torch only (:func:`unwrap_model` also asks mmengine, where it is installed,
for the wrappers registered with it).

* :func:`read_checkpoint`: mm_instdisc's one ``torch.load``, with its one
  ``weights_only`` policy. Every reader of a weights or checkpoint file
  (the converters, exporters, transfer tools, ``ConvertedPretrained``, the
  mmengine checkpoint loader patched by :mod:`mm_instdisc.utils.compat`, the
  benchmarks) goes through it.
* :func:`unwrap_model`: the model inside a ``DistributedDataParallel`` /
  ``DataParallel`` / mmengine model wrapper (what ``runner.model`` is under
  a launcher), or the model itself.
"""
import os.path as osp
import pickle
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

MapLocation = Optional[Union[str, torch.device, Callable, dict]]


def read_checkpoint(path: str, map_location: MapLocation = 'cpu',
                    tensors_only: bool = False) -> Any:
    """Read a ``.pth`` file (a checkpoint or bare weights).

    The ``weights_only`` policy: the file is first read with
    ``torch.load(weights_only=True)``, which runs no code from the file and
    reads tensors in plain containers (torchvision / timm files, our
    converted and exported backbones, tokenizer codebooks). A file that
    also pickles other Python objects (an mmengine training checkpoint: its
    message hub, numpy RNG state, config) is then read again with
    ``weights_only=False``, as mmengine's own loader does: every file read
    here is one the user named (command line or config), so is trusted as
    they trust it. ``tensors_only=True`` refuses that second read, for files
    that must load as other libraries load them
    (``torch.load(path, weights_only=True)``), e.g. checking an export.

    Args:
        path (str): The file (``~`` is expanded; URLs are not fetched).
        map_location (str | torch.device | Callable | dict, optional): As
            ``torch.load``'s. Defaults to ``'cpu'``.
        tensors_only (bool): Only ``weights_only=True``. Defaults to False.

    Returns:
        Any: What the file holds (a dict for every checkpoint we read).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        pickle.UnpicklingError: ``tensors_only`` and the file holds other
            objects than tensors (the message names the file).
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Checkpoint not found: {path!r} (a local file is expected; '
            'download URLs first).')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if tensors_only:
            raise pickle.UnpicklingError(
                f'{path} holds more than tensors, so '
                f'torch.load(weights_only=True) refuses it: {e}') from e
    return torch.load(path, map_location=map_location, weights_only=False)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside its distributed / data-parallel wrappers.

    ``runner.model`` is the algorithm itself in one process and a wrapper
    holding it as ``.module`` under a launcher (torch's
    ``DistributedDataParallel`` and ``DataParallel``, mmengine's
    ``MMDistributedDataParallel``, ``MMSeparateDistributedDataParallel``,
    ``MMFullyShardedDataParallel``, all subclasses of torch's or registered
    in its ``MODEL_WRAPPERS``). A submodule that happens to be named
    ``module`` (AdCo's ``encoder_k.module``) is not a wrapper and stays.

    Args:
        model (nn.Module): ``runner.model`` or any module.

    Returns:
        nn.Module: The innermost wrapped model (``model`` when unwrapped).
    """
    while _is_wrapper(model):
        model = model.module
    return model


def _is_wrapper(model: nn.Module) -> bool:
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    if isinstance(model, wrappers):
        return True
    try:  # mmengine's registered wrappers (FSDP, user-registered ones)
        from mmengine.model import is_model_wrapper
    except ImportError:
        return False
    return is_model_wrapper(model)
