"""Mixed precision through ``torch.autocast`` on CPU (bf16) and CUDA.

mmengine's ``AmpOptimWrapper`` asserts a GPU (or NPU / MLU / MUSA) at
construction, so CPUs with fast bf16 matrix units (AVX512-BF16, AMX) cannot
train in mixed precision through it. :class:`AutocastOptimWrapper` is its
drop-in replacement that also runs on CPU.
"""
import logging
from contextlib import contextmanager, nullcontext
from typing import Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

#: Device types the wrapper autocasts on.
SUPPORTED_DEVICES = ('cpu', 'cuda')
#: Autocast dtypes (names as in configs).
SUPPORTED_DTYPES = ('bfloat16', 'float16')
#: ``attention_backend`` values: ``torch.nn.attention.SDPBackend`` members.
ATTENTION_BACKENDS = ('math', 'flash_attention', 'efficient_attention',
                      'cudnn_attention')


def cpu_bf16_supported() -> bool:
    """Whether this CPU has oneDNN's bfloat16 kernels (AVX512 / AVX512-BF16 /
    AMX on x86, BF16 on Arm). Without them, bf16 convolutions fall back to
    torch's reference kernel: a ResNet-18 step on 28 px images took 44 s in
    bf16 against 1.7 s in float32 (1 thread, an AMD EPYC with AVX2 only)."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # no such op: assume it has them
        return True


def _param_device_type(optimizer: torch.optim.Optimizer) -> Optional[str]:
    for group in optimizer.param_groups:
        for p in group['params']:
            return p.device.type
    return None


def _to_channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also trains on CPU, in bfloat16 by default.

    :meth:`optim_context` (which ``BaseModel.train_step`` enters around the
    data preprocessor and the forward pass) adds
    ``torch.autocast(device_type, dtype)`` to ``OptimWrapper``'s context:
    convolutions and matrix products run in ``dtype`` while the parameters,
    their gradients and the optimizer state stay float32 (the master
    weights); the project's losses compute their logits in float32 anyway
    (``mm_instdisc.modules._checks.float32_math``).

    Loss scaling follows the dtype:

    * ``bfloat16`` (CPU or CUDA): no ``GradScaler``: bf16 has float32's
      exponent range, so gradients neither underflow nor overflow and a loss
      scale would only cost time. Backward and step are ``OptimWrapper``'s;
      :attr:`loss_scaler` is None and ``state_dict`` has no ``loss_scaler``.
    * ``float16`` on CUDA: exactly ``AmpOptimWrapper`` (``GradScaler`` built
      from ``loss_scale``, unscaling before gradient clipping, inf/NaN
      steps skipped, the scaler's state checkpointed).
    * ``float16`` on CPU is refused (``ValueError``): CPU fp16 autocast is
      slow and would need loss scaling; use bfloat16.

    Config::

        optim_wrapper = dict(
            type='AutocastOptimWrapper',
            optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                           weight_decay=1e-4),
            dtype='bfloat16',        # default; 'float16' on CUDA only
            channels_last=True)      # optional, CPU convnets: see below

    Checkpoints round-trip like ``AmpOptimWrapper``'s: the optimizer state,
    ``base_param_settings`` and, when a scaler exists, ``loss_scaler``. A
    ``loss_scaler`` entry met by a bf16 wrapper (a checkpoint of an fp16
    run) is dropped with a warning; a checkpoint without one loaded into an
    fp16 wrapper keeps the fresh scaler.

    Args:
        optimizer (Optimizer): The optimizer (built by the constructor).
        loss_scale (float | str | dict): ``AmpOptimWrapper``'s ``GradScaler``
            configuration, used with float16 only (ignored, with a warning
            unless it is the default ``'dynamic'``, for bfloat16).
            Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): ``'bfloat16'`` or
            ``'float16'``; None means bfloat16. Defaults to ``'bfloat16'``.
        use_fsdp (bool): ``AmpOptimWrapper``'s ``ShardedGradScaler`` switch
            (float16 only). Defaults to False.
        device_type (str, optional): ``'cpu'`` or ``'cuda'``. None (default)
            takes the device of the optimizer's parameters, i.e. of the
            model (mmengine's ``Runner`` moves the model to its device before
            it builds the wrapper); ``'cuda' if torch.cuda.is_available()
            else 'cpu'`` for an optimizer without parameters.
        channels_last (bool): Store the optimizer's 4-D parameters (conv
            weights) in ``torch.channels_last`` memory format, in place
            (``param.data``: the ``Parameter`` objects, and so the model's,
            the optimizer's and hooks' references, are unchanged); convolutions
            then run in NHWC, which oneDNN's bf16 kernels prefer, and their
            outputs stay NHWC. Optimizer state loaded later is converted too.
            Only parameters the optimizer holds are converted (frozen convs
            follow the layout of their input). Under DDP the wrapper is built
            after ``DistributedDataParallel``, whose gradient buckets keep
            the old layout: still correct, but torch warns once about grad
            strides and copies gradients with a layout change; there, prefer
            converting the model before it is wrapped. Defaults to False.
        attention_backend (str, optional): Restrict
            ``F.scaled_dot_product_attention`` (ViTs' attention) to one
            backend inside the context, e.g. ``'math'`` (one of
            :data:`ATTENTION_BACKENDS`); None lets torch choose. On CPU in
            bf16 torch chooses its flash kernel, whose backward is slow: a
            SplitMask step (ViT width 128, 64 patches, batch 256, 2 threads)
            took 2.27 s with it and 1.30 s with ``'math'`` (0.86 s for the
            flash backward alone). The backend of the forward decides the
            backward, so the restriction covers both. Defaults to None.
        cpu_bf16_fallback (bool): On a CPU without oneDNN's bfloat16
            kernels (:func:`cpu_bf16_supported`; e.g. AVX2-only x86), where
            bf16 convolutions are more than 20x slower than float32, train
            in float32 instead (autocast off, a warning says so; everything
            else unchanged, :attr:`autocast` is False). False keeps bf16
            autocast there anyway. Defaults to True.
        **kwargs: ``accumulative_counts``, ``clip_grad`` of ``OptimWrapper``.

    Raises:
        ValueError: For an unknown ``dtype`` or ``device_type``, float16 on
            CPU, CUDA requested but unavailable, bfloat16 on a CUDA device
            without it, an unknown ``attention_backend``.
    """

    valid_dtypes = SUPPORTED_DTYPES

    def __init__(self,
                 optimizer: torch.optim.Optimizer,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = 'bfloat16',
                 use_fsdp: bool = False,
                 device_type: Optional[str] = None,
                 channels_last: bool = False,
                 attention_backend: Optional[str] = None,
                 cpu_bf16_fallback: bool = True,
                 **kwargs) -> None:
        dtype = self._resolve_dtype(dtype)
        if (attention_backend is not None
                and attention_backend not in ATTENTION_BACKENDS):
            raise ValueError(
                f'{type(self).__name__}: attention_backend='
                f'{attention_backend!r} is not supported; expected one of '
                f'{ATTENTION_BACKENDS} or None (torch chooses).')
        self.attention_backend = attention_backend
        if device_type is None:
            device_type = _param_device_type(optimizer) or (
                'cuda' if torch.cuda.is_available() else 'cpu')
        if device_type not in SUPPORTED_DEVICES:
            raise ValueError(
                f'{type(self).__name__}: device_type={device_type!r} is not '
                f'supported; expected one of {SUPPORTED_DEVICES} or None '
                '(the device of the parameters). For NPU / MLU / MUSA use '
                "mmengine's AmpOptimWrapper.")
        if device_type == 'cpu' and dtype == torch.float16:
            raise ValueError(
                f"{type(self).__name__}: dtype='float16' is not supported on "
                'CPU (CPU float16 autocast is slow and would need loss '
                "scaling); expected dtype='bfloat16' on CPU ('float16' only "
                'on CUDA).')
        if device_type == 'cuda':
            if not torch.cuda.is_available():
                raise ValueError(
                    f"{type(self).__name__}: device_type='cuda' but CUDA is "
                    "not available; expected device_type='cpu' or None.")
            if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
                raise ValueError(
                    f"{type(self).__name__}: dtype='bfloat16' is not "
                    "supported by this CUDA device; expected dtype='float16'.")
        if not isinstance(loss_scale, (str, float, dict)) or (
                isinstance(loss_scale, str) and loss_scale != 'dynamic'):
            raise TypeError('loss_scale must be of type float, dict, or '
                            f'"dynamic", but got {loss_scale!r}')

        self.device_type = device_type
        if dtype == torch.float16:  # CUDA: AmpOptimWrapper, GradScaler
            super().__init__(optimizer=optimizer, loss_scale=loss_scale,
                             dtype=dtype, use_fsdp=use_fsdp, **kwargs)
        else:  # bfloat16: no loss scaling, and no GPU assertion
            if loss_scale != 'dynamic':
                print_log(
                    f'{type(self).__name__}: loss_scale={loss_scale!r} is '
                    'ignored with bfloat16 (no loss scaling needed).',
                    logger='current', level=logging.WARNING)
            super(AmpOptimWrapper, self).__init__(optimizer=optimizer,
                                                  **kwargs)
            self._scale_update_param = None
            self.loss_scaler = None
            self.cast_dtype = dtype
        #: whether :meth:`optim_context` autocasts (False: the float32
        #: fallback on a CPU without bf16 kernels)
        self.autocast = True
        if (device_type == 'cpu' and dtype == torch.bfloat16
                and cpu_bf16_fallback and not cpu_bf16_supported()):
            self.autocast = False
            print_log(
                f'{type(self).__name__}: this CPU has no oneDNN bfloat16 '
                'kernels (no AVX512 / AMX), where bf16 convolutions run a '
                'reference kernel more than 20x slower than float32; training '
                'in float32 instead (cpu_bf16_fallback=False keeps bf16).',
                logger='current', level=logging.WARNING)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self._params_to_channels_last()

    @staticmethod
    def _resolve_dtype(dtype) -> torch.dtype:
        if dtype is None:
            return torch.bfloat16
        if isinstance(dtype, str) and dtype in SUPPORTED_DTYPES:
            return getattr(torch, dtype)
        if dtype in (torch.bfloat16, torch.float16):
            return dtype
        raise ValueError(f'AutocastOptimWrapper: dtype={dtype!r} is not '
                         f'supported; expected one of {SUPPORTED_DTYPES} '
                         '(or None for bfloat16).')

    # -------------------------------------------------------- channels_last
    def _cl_params(self):
        return [p for g in self.optimizer.param_groups for p in g['params']
                if p.dim() == 4]

    @torch.no_grad()
    def _params_to_channels_last(self) -> None:
        for p in self._cl_params():
            p.data = _to_channels_last(p.data)
            if p.grad is not None:
                p.grad = _to_channels_last(p.grad)

    @torch.no_grad()
    def _state_to_channels_last(self) -> None:
        for p in self._cl_params():
            state = self.optimizer.state.get(p, {})
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape:
                    state[k] = _to_channels_last(v)

    # ---------------------------------------------------------------- update
    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Backward, through the loss scaler when there is one (float16)."""
        if self.loss_scaler is None:
            super(AmpOptimWrapper, self).backward(loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        """Clip (if configured) and step, through the scaler if any."""
        if self.loss_scaler is None:
            super(AmpOptimWrapper, self).step(**kwargs)
        else:
            super().step(**kwargs)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The optimizer state, plus ``loss_scaler`` when there is one."""
        if self.loss_scaler is None:
            return super(AmpOptimWrapper, self).state_dict()
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what :meth:`state_dict` saved (see the class docstring)."""
        state_dict = dict(state_dict)
        if self.loss_scaler is None:
            if state_dict.pop('loss_scaler', None) is not None:
                print_log(
                    f'{type(self).__name__}: the checkpoint has a loss scaler '
                    '(a float16 run); bfloat16 uses none, so it is dropped.',
                    logger='current', level=logging.WARNING)
            super(AmpOptimWrapper, self).load_state_dict(state_dict)
        else:
            super().load_state_dict(state_dict)
        if self.channels_last:
            self._state_to_channels_last()

    # --------------------------------------------------------------- context
    @contextmanager
    def optim_context(self, model: nn.Module):
        """``OptimWrapper``'s context (gradient accumulation's ``no_sync``)
        plus ``torch.autocast(device_type, dtype)``.

        Raises:
            RuntimeError: If ``model``'s parameters are not on
                :attr:`device_type` (autocast would silently do nothing).
        """
        p = next(model.parameters(), None)
        if p is not None and p.device.type != self.device_type:
            raise RuntimeError(
                f'{type(self).__name__} autocasts on {self.device_type!r} '
                f'but the model is on {p.device.type!r}; build the wrapper '
                'after moving the model, or set device_type.')
        with super(AmpOptimWrapper, self).optim_context(model), \
                torch.autocast(device_type=self.device_type,
                               dtype=self.cast_dtype,
                               enabled=self.autocast), \
                self._attention_context():
            yield

    def _attention_context(self):
        if self.attention_backend is None:
            return nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel(getattr(SDPBackend,
                                   self.attention_backend.upper()))
