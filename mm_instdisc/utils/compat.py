"""Make mmengine 0.10.7 work with torch >= 2.6 and on CPU-only clusters.

Applied once, automatically, when any OpenMMLab part of mm_instdisc is
imported (``mm_instdisc.models``, ``.engine``, ``.datasets``,
``.evaluation``), so configs run through ``custom_imports`` get it with
mmpretrain's own tools as well as ours. Users set no environment variable.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
   mmengine's local checkpoint loader then refuses its own checkpoints
   (message hub, numpy state, config dicts). The local loader is replaced by
   one that passes ``weights_only=False``; it only reads files that the
   user's config or command line names.
2. ``init_dist(launcher='pytorch')`` calls ``torch.cuda.set_device`` and
   uses NCCL; without a GPU it now skips ``set_device`` and uses gloo.
3. The Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, which
   DDP rejects for CPU modules; without a GPU ``device_ids=None`` is used.
"""
import os

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
        filename = os.path.expanduser(filename)
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        return torch.load(filename, map_location=map_location,
                          weights_only=False)

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
