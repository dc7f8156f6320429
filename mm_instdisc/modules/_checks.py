"""Input checks and float32 numerics shared by every loss (imports only torch).

Two concerns live here so that each loss states them in one line:

* **Numerics under autocast.** Contrastive losses divide cosine similarities
  by small temperatures (0.01-0.2) and sum ``exp`` over thousands to millions
  of rows. In float16 a single ``exp(1/0.07 + log N)`` overflows (65504), and
  in bfloat16 (8 mantissa bits) the logits themselves lose two decimal digits.
  :func:`float32_math` disables autocast and casts the operands to float32,
  so logits, normalising constants and log-sum-exps are computed in float32
  whatever precision the encoder runs in; gradients flow back to the
  half-precision features through the cast.
* **Bad input.** A check that reads a value back from the device (``isfinite``
  of a whole tensor) synchronises a GPU stream. :class:`PeriodicCheck` runs such
  checks on the first call and then every ``interval`` calls, so they cost
  nothing measurable in training while still naming the bad tensor.
"""
import contextlib
import math
from typing import Iterator, Tuple

import torch
from torch import Tensor


def check_finite(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` if ``x`` has NaN or Inf entries."""
    if not torch.isfinite(x).all():
        bad = ~torch.isfinite(x)
        n_nan = int(torch.isnan(x).sum())
        where = bad.nonzero()[0].tolist()
        raise ValueError(
            f'{name} contains {int(bad.sum())} non-finite values '
            f'({n_nan} NaN) of {x.numel()}, first at index {where}; the '
            'encoder may have diverged (lower the learning rate or check the '
            'input pipeline), or a checkpoint holds corrupted state.')


def check_indices(idx: Tensor, length: int, name: str = 'Memory bank',
                  hint: str = 'Does the bank length match the training set '
                  'size?') -> None:
    """Row indices must be a 1-D integer tensor within [0, length).

    Reads the min and max back from the device (on a GPU a bad index would
    otherwise be a fatal device-side assert).
    """
    if idx.dim() != 1 or idx.dtype not in (torch.int32, torch.int64):
        raise ValueError(f'{name} indices must be a 1-D integer tensor, got '
                         f'dtype={idx.dtype} shape={tuple(idx.shape)}.')
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= length):
        raise ValueError(
            f'{name} index out of range [0, {length}): min {int(idx.min())}, '
            f'max {int(idx.max())}. {hint}')


def check_temperature(name: str, value: float) -> float:
    """A temperature must be a finite number > 0; returns it as a float."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'Illegal {name}: {value!r}; expected a number > 0.')
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f'Illegal {name}: {value}; expected a finite number '
                         '> 0.')
    return value


def check_batch(name: str, x: Tensor, dim: int = 2) -> None:
    """Raise on a tensor that is not ``dim``-D or has no rows (empty batch)."""
    if x.dim() != dim:
        raise ValueError(f'Expected {name} of {dim} dimensions, got shape '
                         f'{tuple(x.shape)}.')
    if x.shape[0] == 0:
        raise ValueError(f'Empty batch: {name} has shape {tuple(x.shape)}; a '
                         'loss needs at least one sample (check drop_last and '
                         'the data set size).')


class PeriodicCheck:
    """Decides when device-syncing checks run: call 1, then every ``interval``.

    Args:
        interval (int): Calls between checks; 1 checks every call, 0 never.

    Examples:
        >>> check = PeriodicCheck(3)
        >>> [check.due() for _ in range(7)]
        [True, False, False, True, False, False, True]
    """

    def __init__(self, interval: int = 100) -> None:
        if interval < 0:
            raise ValueError(f'Illegal check interval: {interval}; expected '
                             '>= 0 (0 disables the checks).')
        self.interval = int(interval)
        self.calls = 0

    def due(self) -> bool:
        """True when this call should run the checks (counts the call)."""
        due = self.interval > 0 and self.calls % self.interval == 0
        self.calls += 1
        return due


def _no_autocast(device_type: str):
    if device_type in ('cpu', 'cuda', 'xpu', 'hpu', 'mps'):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


@contextlib.contextmanager
def float32_math(*tensors: Tensor) -> Iterator[Tuple[Tensor, ...]]:
    """Autocast off, operands in (at least) float32.

    Usage::

        with float32_math(q, k) as (q, k):
            logits = q @ k.t() / tau      # float32 even under fp16 autocast

    float64 inputs stay float64 (tests compare against them).
    """
    device = next((t.device.type for t in tensors if t is not None), 'cpu')
    with _no_autocast(device):
        yield tuple(
            t if t is None or t.dtype == torch.float64 else t.float()
            for t in tensors)
