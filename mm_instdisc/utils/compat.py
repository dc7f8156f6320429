"""Make mmengine 0.10.7 work with torch >= 2.6 and on CPU-only clusters.

Applied once, automatically, when any OpenMMLab part of mm_instdisc is
imported (``mm_instdisc.models``, ``.engine``, ``.datasets``,
``.evaluation``), so configs run through ``custom_imports`` get it with
mmpretrain's own tools as well as ours. Users set no environment variable.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
   mmengine's local checkpoint loader then refuses its own checkpoints
   (message hub, numpy state, config dicts). The local loader is replaced by
   :func:`~mm_instdisc.utils.checkpoint.read_checkpoint` (``weights_only``
   first, then ``False`` for such checkpoints; it only reads files that the
   user's config or command line names).
2. ``init_dist(launcher='pytorch')`` calls ``torch.cuda.set_device`` and
   uses NCCL; without a GPU it now skips ``set_device`` and uses gloo.
3. The Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, which
   DDP rejects for CPU modules; without a GPU ``device_ids=None`` is used.
4. mmcv 2.1.0's ``adjust_hue`` (used by mmpretrain's ``ColorJitter``) computes
   ``np.uint8(negative)``, an ``OverflowError`` under numpy 2. It is replaced
   by the same hue rotation with the shift taken modulo 256.
"""

import torch

_APPLIED = False


def _cuda() -> bool:
    return torch.cuda.is_available()


def apply_compat_patches() -> None:
    """Install the patches (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True

    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils
    from mmengine.runner import checkpoint as ckpt
    from mmengine.runner import runner as runner_mod

    # 1. checkpoint loading under torch's weights_only default
    def load_from_local(filename, map_location):
        from .checkpoint import read_checkpoint
        return read_checkpoint(filename, map_location)

    ckpt.CheckpointLoader.register_scheme(prefixes='', loader=load_from_local,
                                          force=True)
    ckpt.load_from_local = load_from_local

    # 2. distributed init on CPU-only machines
    orig_init = dist_utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if _cuda() or init_backend != 'torch':
            return orig_init(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch

    # 3. DDP without device_ids for CPU modules
    Runner = runner_mod.Runner
    orig_wrap = Runner.wrap_model

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not _cuda():
            cfg = dict(model_wrapper_cfg or {})
            cfg.setdefault('type', 'MMDistributedDataParallel')
            cfg.setdefault('device_ids', None)
            cfg.setdefault('broadcast_buffers', False)
            cfg.setdefault('find_unused_parameters',
                           self.cfg.get('find_unused_parameters', False))
            model_wrapper_cfg = cfg
        return orig_wrap(self, model_wrapper_cfg, model)

    Runner.wrap_model = wrap_model

    # 4. numpy-2-safe hue rotation
    _patch_adjust_hue()


def adjust_hue(img, hue_factor: float, backend=None):
    """mmcv.adjust_hue with the hue shift wrapped into [0, 256)."""
    import cv2
    import numpy as np
    from mmcv.image import photometric
    from PIL import Image
    if backend is None:
        backend = photometric.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f'backend: {backend} is not supported. Supported '
                         "backends are 'cv2', 'pillow'")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    # the same rotation as mmcv's uint8 overflow arithmetic, without overflow
    shift = np.uint8(int(hue_factor * 255) % 256)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))  # RGB
        h, s, v = pil.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8) + shift  # wraps modulo 256
        pil = Image.merge('HSV', (Image.fromarray(np_h), s, v))
        return np.array(pil.convert('RGB'), dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv)
    h = h.astype(np.uint8) + shift
    return cv2.cvtColor(cv2.merge([h, s, v]),
                        cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def _patch_adjust_hue() -> None:
    try:
        import mmcv
        from mmcv import image as mmcv_image
        from mmcv.image import photometric
    except ImportError:  # mmcv is optional for the plain-PyTorch modules
        return
    for mod in (mmcv, mmcv_image, photometric):
        if hasattr(mod, 'adjust_hue'):
            mod.adjust_hue = adjust_hue
