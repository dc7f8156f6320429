"""Training budgets in minutes of wall time instead of epochs.

:class:`TimeBudgetTrainLoop` (``train_cfg = dict(type='TimeBudgetTrainLoop',
minutes=15, ...)``) trains a short measured start (the *probe*), then fixes
the total number of iterations so that training ends ``minutes`` after the
loop was built, and anneals the learning rate (warm-up + cosine,
:class:`TimeBudgetLR`) over that decided length. :func:`apply_time_budget`
turns a config with a LinearLR warm-up + CosineAnnealingLR schedule into a
budgeted one; :func:`plan_iterations` is the decision's arithmetic.

The clock is :func:`wall_clock`, looked up at every call, so that tests can
replace it (``monkeypatch.setattr(time_budget_loop, 'wall_clock', fake)``).
"""
import copy
import datetime
import logging
import math
import numbers
import time
from typing import Dict, List, Optional, Sequence, Union

from mmengine.config import Config
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.runner.base_loop import BaseLoop
from mmpretrain.registry import LOOPS
from torch import nn
from torch.utils.data import DataLoader

#: The runtime-info key of the message hub (saved in every checkpoint) that
#: holds the loop's decision.
INFO_KEY = 'time_budget'

# the bound of an undecided run without ``max_epochs`` (mmengine's INF)
_UNBOUNDED = INF


def wall_clock() -> float:
    """Seconds of a monotonic wall clock (``time.perf_counter``)."""
    return time.perf_counter()


def _check_number(name: str, value, low: float, high: float,
                  low_open: bool = False, high_open: bool = False,
                  integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(value) and (value > low if low_open else
                                       value >= low) and (
                                           value < high if high_open else
                                           value <= high)
    if not ok:
        lo = f'({low}' if low_open else f'[{low}'
        hi = f'{high})' if high_open else f'{high}]'
        what = 'an integer' if integer else 'a number'
        raise ValueError(f'Illegal {name}: {value!r}; expected {what} in '
                         f'{lo}, {hi}.')


def plan_iterations(budget_s: float, elapsed_s: float,
                    s_per_iter: Optional[float], done_iters: int,
                    reserve_ratio: float = 0.0,
                    max_iters: Optional[int] = None) -> int:
    """Total number of iterations that fit a wall-time budget.

    ``done_iters + floor((budget_s * (1 - reserve_ratio) - elapsed_s) /
    s_per_iter)``, at least ``done_iters`` (a spent budget stops training
    at once) and at most ``max_iters``.

    Args:
        budget_s (float): The whole budget in seconds.
        elapsed_s (float): Seconds spent so far (set-up, hooks, the
            iterations done).
        s_per_iter (float, optional): Measured seconds per iteration; None
            (nothing measured) only with ``max_iters``, which is then the
            answer.
        done_iters (int): Iterations already trained.
        reserve_ratio (float): Share of the budget left for validation,
            checkpoints and after-train work. Defaults to 0.
        max_iters (int, optional): Upper bound. Defaults to None.

    Returns:
        int: The total number of iterations, ``done_iters`` included.
    """
    if s_per_iter is None:
        if max_iters is None:
            raise ValueError('plan_iterations needs s_per_iter or max_iters.')
        return max(int(max_iters), done_iters)
    _check_number('s_per_iter', s_per_iter, 0, math.inf, low_open=True,
                  high_open=True)
    left = budget_s * (1.0 - reserve_ratio) - elapsed_s
    total = done_iters + max(0, math.floor(left / s_per_iter))
    if max_iters is not None:
        total = min(total, int(max_iters))
    return max(total, done_iters)


def check_budget_args(minutes: float, probe_iters: int = 20,
                      skip_iters: int = 3, reserve_ratio: float = 0.05,
                      warmup_iters: int = 0,
                      warmup_ratio: Optional[float] = None,
                      warmup_start_factor: float = 0.1,
                      eta_min_ratio: float = 0.0,
                      max_epochs: Optional[int] = None, val_begin: int = 1,
                      val_interval: Optional[int] = None) -> None:
    """Raise ``ValueError`` naming the first bad argument of
    :class:`TimeBudgetTrainLoop` (same names and defaults)."""
    _check_number('minutes', minutes, 0, math.inf, low_open=True,
                  high_open=True)
    _check_number('probe_iters', probe_iters, 1, math.inf, integer=True,
                  high_open=True)
    _check_number('skip_iters', skip_iters, 0, math.inf, integer=True,
                  high_open=True)
    _check_number('reserve_ratio', reserve_ratio, 0, 1, high_open=True)
    _check_number('warmup_iters', warmup_iters, 0, math.inf, integer=True,
                  high_open=True)
    if warmup_ratio is not None:
        _check_number('warmup_ratio', warmup_ratio, 0, 1, high_open=True)
        if warmup_iters:
            raise ValueError(
                f'Give warmup_iters ({warmup_iters}) or warmup_ratio '
                f'({warmup_ratio}), not both.')
    _check_number('warmup_start_factor', warmup_start_factor, 0, 1)
    _check_number('eta_min_ratio', eta_min_ratio, 0, 1)
    if max_epochs is not None:
        _check_number('max_epochs', max_epochs, 1, math.inf, integer=True,
                      high_open=True)
    _check_number('val_begin', val_begin, 0, math.inf, integer=True,
                  high_open=True)
    if val_interval is not None:
        _check_number('val_interval', val_interval, 1, math.inf,
                      integer=True, high_open=True)


class TimeBudgetLR(_ParamScheduler):
    """Warm-up + cosine lr over a length decided during training.

    The schedule of :class:`TimeBudgetTrainLoop`, which builds it (it is
    not registered for configs). With ``t`` the iteration, ``lr0`` a
    group's initial lr, ``s`` the start factor and ``r`` the eta-min ratio,
    ``lr = lr0 * f(t)`` with

    * ``f = s`` before the warm-up begins (``t < warmup_begin``);
    * a linear ramp from ``s`` to 1 over ``[warmup_begin, warmup_end)``;
    * ``f = 1`` up to ``cosine_begin`` (and while the length is undecided);
    * ``f = r + (1 - r) * (1 + cos(pi * (t - c) / (n - c))) / 2`` over
      ``[c, n)``, ``c = cosine_begin``, ``n`` the decided length.

    A warm-up in iterations (``warmup_iters``) is known from the start
    (``warmup_begin = 0``). A warm-up as a share of the decided length
    (``warmup_ratio``) is not: the lr stays at ``s * lr0`` until the
    decision, then ramps up to iteration ``round(warmup_ratio * n)``. The
    cosine begins at the end of the warm-up, or at the decision if that
    comes later, so iterations already trained keep their lr.

    Args:
        optimizer (OptimWrapper or Optimizer): The wrapped optimizer.
        warmup_iters (int): Warm-up length in iterations. Defaults to 0.
        warmup_ratio (float, optional): Warm-up length as a share of the
            decided length (instead of ``warmup_iters``). Defaults to None.
        start_factor (float): lr factor at the start of the warm-up.
            Defaults to 0.1.
        eta_min_ratio (float): Final lr as a share of the initial lr.
            Defaults to 0.
        begin (int): Must be 0. Defaults to 0.
        end (int): Step at which the schedule stops. Defaults to INF.
        by_epoch (bool): Must be False (steps are iterations). Defaults to
            False.
        last_step (int): As mmengine's schedulers. Defaults to -1.
        verbose (bool): As mmengine's schedulers. Defaults to False.
    """

    def __init__(self, optimizer, warmup_iters: int = 0,
                 warmup_ratio: Optional[float] = None,
                 start_factor: float = 0.1, eta_min_ratio: float = 0.0,
                 begin: int = 0, end: int = INF, by_epoch: bool = False,
                 last_step: int = -1, verbose: bool = False) -> None:
        if begin != 0 or by_epoch:
            raise ValueError(
                f'TimeBudgetLR counts iterations from 0; got begin={begin}, '
                f'by_epoch={by_epoch} (expected 0 and False).')
        self.warmup_ratio = warmup_ratio
        self.start_factor = float(start_factor)
        self.eta_min_ratio = float(eta_min_ratio)
        # undecided: a ratio warm-up has not begun, the cosine neither
        self.warmup_begin: Optional[int] = 0 if warmup_ratio is None else None
        self.warmup_end: Optional[int] = (int(warmup_iters) if warmup_ratio
                                          is None else None)
        self.cosine_begin: Optional[int] = None
        self.total_iters: Optional[int] = None
        super().__init__(optimizer, 'lr', begin=0, end=end,
                         last_step=last_step, by_epoch=False,
                         verbose=verbose)

    def set_length(self, total_iters: int, done_iters: int) -> None:
        """Fix the schedule's length after ``done_iters`` iterations (their
        lr is unchanged) and write the lr of the current step."""
        if self.warmup_ratio is not None:
            self.warmup_begin = done_iters
            self.warmup_end = max(done_iters,
                                  round(self.warmup_ratio * total_iters))
        self.cosine_begin = max(self.warmup_end, done_iters)
        self.total_iters = int(total_iters)
        for group, value in zip(self.optimizer.param_groups,
                                self._get_value()):
            group['lr'] = value
        self._last_value = [g['lr'] for g in self.optimizer.param_groups]

    def factor(self, step: int) -> float:
        """The lr factor ``f(step)`` (see the class docstring)."""
        s, r = self.start_factor, self.eta_min_ratio
        if self.warmup_begin is None or step < self.warmup_begin:
            return s
        if step < self.warmup_end:
            frac = (step - self.warmup_begin) / (self.warmup_end -
                                                 self.warmup_begin)
            return s + (1.0 - s) * frac
        n, c = self.total_iters, self.cosine_begin
        if n is None or step < c:
            return 1.0
        if n <= c:
            return r
        progress = min(step - c, n - c) / (n - c)
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _get_value(self) -> List[float]:
        f = self.factor(self.last_step)
        return [base * f for base in self.base_values]


class _EpochIterator:
    """Batches of the data loader, one epoch after another.

    The loop starts each epoch (:meth:`start_epoch`, which sets the
    sampler's epoch so the shuffle differs) and counts its batches. On
    resume, :meth:`fast_forward` makes the next ``n`` batches skips: whole
    epochs are skipped without loading, the batches of the current epoch
    that were trained are loaded (the sampler must reach them). The loop
    takes the skips through ``loop.dataloader_iterator``, so that a
    wrapper there (``RandomStateHook`` restores the random state after the
    skips) sees them as with mmengine's ``IterBasedTrainLoop``.
    """

    def __init__(self, dataloader: DataLoader) -> None:
        self.dataloader = dataloader
        self.epoch = 0
        self._iterator = None
        self._free = 0

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._iterator = None

    def fast_forward(self, num_batches: int, batches_per_epoch: int) -> None:
        self.start_epoch(num_batches // batches_per_epoch)
        self._free = self.epoch * batches_per_epoch

    def _open(self) -> None:
        loader = self.dataloader
        sampler = getattr(loader, 'sampler', None)
        if not hasattr(sampler, 'set_epoch'):
            sampler = getattr(getattr(loader, 'batch_sampler', None),
                              'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self.epoch)
        self._iterator = iter(loader)

    def __iter__(self):
        return self

    def __next__(self):
        if self._free > 0:
            self._free -= 1
            return None
        if self._iterator is None:
            self._open()
        try:
            return next(self._iterator)
        except StopIteration:
            # fewer batches than len(dataloader): go on with the next epoch
            print_log(
                'TimeBudgetTrainLoop: the data loader ran out before '
                'len(dataloader) batches; starting the next epoch.',
                logger='current', level=logging.WARNING)
            self.start_epoch(self.epoch + 1)
            self._open()
            return next(self._iterator)


def _set_max_counts(optim_wrapper, total: int) -> None:
    """Tell the optimizer wrapper(s) the decided length: mmengine's
    ``initialize_count_status`` took the undecided bound (it matters to
    gradient accumulation's last, partial, accumulation only)."""
    wrappers = (list(optim_wrapper.values()) if isinstance(
        optim_wrapper, OptimWrapperDict) else [optim_wrapper])
    for w in wrappers:
        if hasattr(w, '_max_counts'):
            w._max_counts = total
            w._remainder_counts = total % w._accumulative_counts


def _has_schedulers(schedulers) -> bool:
    if schedulers is None:
        return False
    if isinstance(schedulers, dict):
        if 'type' in schedulers:
            return True
        return any(_has_schedulers(s) for s in schedulers.values())
    if isinstance(schedulers, (list, tuple)):
        return len(schedulers) > 0
    return True


def _iter_schedulers(schedulers):
    if isinstance(schedulers, dict):
        for s in schedulers.values():
            yield from _iter_schedulers(s)
    elif isinstance(schedulers, (list, tuple)):
        for s in schedulers:
            yield from _iter_schedulers(s)
    elif schedulers is not None:
        yield schedulers


@LOOPS.register_module()
class TimeBudgetTrainLoop(BaseLoop):
    """Train for a wall-time budget: the length in iterations is decided
    after a measured start, and the lr anneals over that length.

    * **Clock.** The budget counts from the construction of the loop, the
      first step of ``Runner.train()`` (before the optimizer, weight
      initialisation, resume and ``before_train`` hooks such as a memory
      bank's initial pass), with :func:`wall_clock`.
    * **Probe.** The first ``skip_iters`` iterations (kernel warm-up, data
      loader workers) are trained but not timed; the next ``probe_iters``
      are timed (data, step and hooks; validations and epoch hooks in
      between are left out). They are ordinary training iterations.
    * **Decision.** Right after the last probe step, rank 0 decides
      ``total = done + floor((60 * minutes * (1 - reserve_ratio) -
      elapsed) / s_per_iter)`` (:func:`plan_iterations`; at most
      ``max_epochs`` epochs) and broadcasts it, so every rank trains the
      same length. The ``reserve_ratio`` share of the budget is left for
      validation, checkpoints and after-train work (it is not measured:
      raise it when validations are long). The decision (s/iter, total
      iterations and epochs, expected end) is logged.
    * **Schedule.** The loop owns the lr schedule: it installs a
      :class:`TimeBudgetLR` (warm-up, then cosine to
      ``eta_min_ratio * lr`` over the decided length, by iteration) as the
      runner's param scheduler and refuses a config that has its own
      ``param_scheduler`` (use :func:`apply_time_budget` to convert one).
    * **Epochs.** The data loader is cycled epoch after epoch as by
      ``EpochBasedTrainLoop``: ``runner.epoch`` advances, the sampler's
      epoch is set (a new shuffle), ``before/after_train_epoch`` hooks run
      at every epoch boundary and after the last, partial, epoch;
      ``batch_idx`` is the index within the epoch. ``max_epochs`` reads
      ``ceil(total / len(dataloader))`` once decided, so mmengine's
      ``CheckpointHook`` works by epoch (a checkpoint at each epoch end and
      the last one) or by iteration (``by_epoch=False``), and the
      ``LoggerHook`` logs as in epoch-based training.
    * **Validation.** Every ``val_interval`` iterations (None: none) and
      after the last iteration.
    * **Resume.** The decision is runtime info of the message hub
      (``'time_budget'``) and state of the scheduler, both in every
      checkpoint: a run resumed after the decision trains the same length
      with the same lr at every iteration (the budget is not re-planned).
      A run resumed from a checkpoint written before the decision carries
      the elapsed time over and probes again.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader or dict): The training data loader.
        minutes (float): The wall-time budget of training, in minutes.
        probe_iters (int): Timed iterations before the decision. Defaults
            to 20.
        skip_iters (int): Iterations before the timed ones, not timed.
            Defaults to 3.
        reserve_ratio (float): Share of the budget left for validation,
            checkpoints and after-train work. Defaults to 0.05.
        warmup_iters (int): Warm-up length in iterations. Defaults to 0.
        warmup_ratio (float, optional): Warm-up length as a share of the
            decided length, instead of ``warmup_iters`` (the lr stays at
            the start value during the probe). Defaults to None.
        warmup_start_factor (float): lr factor at the start of the warm-up.
            Defaults to 0.1.
        eta_min_ratio (float): Final lr of the cosine as a share of each
            group's initial lr. Defaults to 0.
        max_epochs (int, optional): Upper bound of the length, in epochs.
            Defaults to None (the budget alone decides).
        val_begin (int): Iteration from which validation runs. Defaults
            to 1.
        val_interval (int, optional): Iterations between validations; None
            validates only after the last iteration. Defaults to None.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 minutes: float, probe_iters: int = 20, skip_iters: int = 3,
                 reserve_ratio: float = 0.05, warmup_iters: int = 0,
                 warmup_ratio: Optional[float] = None,
                 warmup_start_factor: float = 0.1,
                 eta_min_ratio: float = 0.0,
                 max_epochs: Optional[int] = None, val_begin: int = 1,
                 val_interval: Optional[int] = None) -> None:
        self._t0 = wall_clock()  # before the data loader is built
        check_budget_args(minutes=minutes, probe_iters=probe_iters,
                          skip_iters=skip_iters, reserve_ratio=reserve_ratio,
                          warmup_iters=warmup_iters, warmup_ratio=warmup_ratio,
                          warmup_start_factor=warmup_start_factor,
                          eta_min_ratio=eta_min_ratio, max_epochs=max_epochs,
                          val_begin=val_begin, val_interval=val_interval)
        if _has_schedulers(runner.param_schedulers):
            raise ValueError(
                'TimeBudgetTrainLoop owns the lr schedule (warm-up + cosine '
                'over the decided length), but the config also has '
                f'param_scheduler={runner.param_schedulers!r}. Remove it '
                '(param_scheduler = None) and set warmup_iters / '
                'warmup_ratio, warmup_start_factor and eta_min_ratio in '
                'train_cfg, or convert the config with mm_instdisc.engine.'
                'apply_time_budget(cfg, minutes).')
        super().__init__(runner, dataloader)
        self.minutes = float(minutes)
        self.budget_s = 60.0 * self.minutes
        self.probe_iters = int(probe_iters)
        self.skip_iters = int(skip_iters)
        self.reserve_ratio = float(reserve_ratio)
        self.val_begin = int(val_begin)
        self.val_interval = val_interval
        self._epoch_len = len(self.dataloader)
        if self._epoch_len < 1:
            raise ValueError('TimeBudgetTrainLoop: the training data loader '
                             'has no batches.')
        self._cap = (None if max_epochs is None else int(max_epochs) *
                     self._epoch_len)
        self._epoch = 0
        self._iter = 0
        self._total: Optional[int] = None
        self.decision: Optional[dict] = None
        self.stop_training = False  # EarlyStoppingHook sets it
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.runner.visualizer.dataset_meta = \
                self.dataloader.dataset.metainfo
        self._batches = _EpochIterator(self.dataloader)
        self.dataloader_iterator = self._batches
        runner.param_schedulers = [
            dict(type=TimeBudgetLR, warmup_iters=int(warmup_iters),
                 warmup_ratio=warmup_ratio,
                 start_factor=float(warmup_start_factor),
                 eta_min_ratio=float(eta_min_ratio), begin=0, end=INF,
                 by_epoch=False)
        ]

    # ------------------------------------------------------------ lengths
    @property
    def max_iters(self) -> int:
        """int: The decided length; before the decision, its upper bound
        (``max_epochs`` epochs, or mmengine's INF)."""
        if self._total is not None:
            return self._total
        return self._cap if self._cap is not None else _UNBOUNDED

    @property
    def max_epochs(self) -> int:
        """int: Epochs (the last one partial) of :attr:`max_iters`."""
        return -(-self.max_iters // self._epoch_len)

    @property
    def epoch(self) -> int:
        """int: Current epoch."""
        return self._epoch

    @property
    def iter(self) -> int:
        """int: Current iteration."""
        return self._iter

    @property
    def decided(self) -> bool:
        """bool: Whether the length is fixed."""
        return self._total is not None

    # -------------------------------------------------------------- run
    def run(self) -> nn.Module:
        """Launch training."""
        runner = self.runner
        self._restore()
        if self._iter > 0:
            # mmengine restores the epoch of the checkpoint; an iteration
            # checkpoint at an epoch's end precedes that epoch's end hooks
            self._epoch = (self.max_epochs if self._iter >= self.max_iters
                           else self._iter // self._epoch_len)
        runner.call_hook('before_train')
        self._epoch_open = False
        if self._iter < self.max_iters:
            self._begin_epoch()
        if 0 < self._iter < self.max_iters:
            print_log(
                f'TimeBudgetTrainLoop: resuming at iteration {self._iter}: '
                f'skipping {self._iter % self._epoch_len} batches of epoch '
                f'{self._epoch + 1}', logger='current')
            self._batches.fast_forward(self._iter, self._epoch_len)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        if not self.decided:
            self._probe_from = self._iter + self.skip_iters
            self._probe_to = self._probe_from + self.probe_iters
            self._window_start = wall_clock() if self.skip_iters == 0 \
                else None
            self._excluded = 0.0
        while self._iter < self.max_iters and not self.stop_training:
            if not self._epoch_open:
                self._timed(self._begin_epoch)
            runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            if self._iter % self._epoch_len == 0 or \
                    self._iter >= self.max_iters:
                self._timed(self._end_epoch)
            if (runner.val_loop is not None and self._iter >= self.val_begin
                    and ((self.val_interval is not None
                          and self._iter % self.val_interval == 0)
                         or self._iter == self.max_iters)):
                self._timed(runner.val_loop.run)
        if self._epoch_open:
            self._end_epoch()
        runner.call_hook('after_train')
        return runner.model

    def run_iter(self, data_batch: Sequence[dict]) -> None:
        """One training iteration; the decision is taken after the step of
        the last probe iteration, before its ``after_train_iter`` hooks (so
        that a checkpoint written there holds it)."""
        runner = self.runner
        batch_idx = self._iter % self._epoch_len
        runner.call_hook('before_train_iter', batch_idx=batch_idx,
                         data_batch=data_batch)
        outputs = runner.model.train_step(
            data_batch, optim_wrapper=runner.optim_wrapper)
        if not self.decided:
            self._probe_step()
        runner.call_hook('after_train_iter', batch_idx=batch_idx,
                         data_batch=data_batch, outputs=outputs)
        self._iter += 1

    # ----------------------------------------------------------- epochs
    def _begin_epoch(self) -> None:
        self._batches.start_epoch(self._epoch)
        self.runner.call_hook('before_train_epoch')
        self._epoch_open = True

    def _end_epoch(self) -> None:
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self._epoch_open = False

    def _timed(self, fn) -> None:
        """Run ``fn``; during the probe, leave its time out of the window."""
        if self.decided:
            fn()
            return
        start = wall_clock()
        fn()
        if self._window_start is not None:
            self._excluded += wall_clock() - start

    # ---------------------------------------------------------- probing
    def _probe_step(self) -> None:
        done = self._iter + 1
        now = wall_clock()
        self.runner.message_hub.update_info(
            INFO_KEY, dict(total_iters=None, elapsed_s=now - self._t0))
        if done == self._probe_from:
            self._window_start = now
            self._excluded = 0.0
        reached_cap = self._cap is not None and done >= self._cap
        if done < self._probe_to and not reached_cap:
            return
        s_per_iter = None
        measured = done - self._probe_from
        if self._window_start is not None and measured > 0:
            s_per_iter = (now - self._window_start -
                          self._excluded) / measured
            s_per_iter = max(s_per_iter, 1e-9)
        self._decide(now, done, s_per_iter, measured)

    def _decide(self, now: float, done: int, s_per_iter: Optional[float],
                measured: int) -> None:
        elapsed = now - self._t0
        total = plan_iterations(self.budget_s, elapsed, s_per_iter, done,
                                self.reserve_ratio, self._cap)
        decision = dict(
            total_iters=total, decided_at=done, s_per_iter=s_per_iter,
            measured_iters=measured, elapsed_s=elapsed,
            budget_s=self.budget_s,
            reserve_s=self.reserve_ratio * self.budget_s,
            epoch_len=self._epoch_len)
        box = [decision if get_rank() == 0 else None]
        broadcast_object_list(box, src=0)
        self._apply(box[0])
        self._log_decision(self.decision)

    def _apply(self, decision: dict) -> None:
        self.decision = dict(decision)
        self._total = int(decision['total_iters'])
        self.runner.message_hub.update_info(INFO_KEY, dict(self.decision))
        scheds = [s for s in _iter_schedulers(self.runner.param_schedulers)
                  if isinstance(s, TimeBudgetLR)]
        if not scheds:
            raise RuntimeError(
                'TimeBudgetTrainLoop: the runner has no TimeBudgetLR param '
                'scheduler (param_schedulers were replaced after the loop '
                'was built).')
        for s in scheds:
            if s.total_iters is None:
                s.set_length(self._total, int(decision['decided_at']))
            elif s.total_iters != self._total:
                raise RuntimeError(
                    f'TimeBudgetTrainLoop: the resumed scheduler anneals over '
                    f'{s.total_iters} iterations, the checkpoint decided '
                    f'{self._total}.')
        _set_max_counts(self.runner.optim_wrapper, self._total)

    def _log_decision(self, d: dict) -> None:
        total, done = d['total_iters'], d['decided_at']
        s = d['s_per_iter']
        train_left = (total - done) * s if s is not None else 0.0
        end_in = d['elapsed_s'] + train_left
        end_at = datetime.datetime.now() + datetime.timedelta(
            seconds=train_left)
        speed = (f'{s:.4f} s/iter measured over {d["measured_iters"]} '
                 f'iterations (after {self.skip_iters} untimed)'
                 if s is not None else 'not measured')
        bound = '' if self._cap is None else (
            f', bounded by max_epochs ({self._cap} iterations)')
        self.runner.logger.info(
            f'TimeBudgetTrainLoop: {speed}; {d["elapsed_s"]:.1f} s spent '
            f'before and during the first {done} iterations; budget '
            f'{d["budget_s"]:.0f} s with {d["reserve_s"]:.0f} s reserved '
            f'for validation, checkpoints and after-train work. Decided '
            f'{total} iterations in all ({total / self._epoch_len:.2f} '
            f'epochs of {self._epoch_len}){bound}; training is expected to '
            f'end {end_in / 60:.1f} min after the start, at '
            f'{end_at:%Y-%m-%d %H:%M:%S}.')
        if total <= done:
            self.runner.logger.warning(
                'TimeBudgetTrainLoop: the budget is spent; training stops '
                f'after {done} iterations.')
        for sched in _iter_schedulers(self.runner.param_schedulers):
            if isinstance(sched, TimeBudgetLR) and \
                    sched.warmup_end > total:
                self.runner.logger.warning(
                    f'TimeBudgetTrainLoop: the warm-up ({sched.warmup_end} '
                    f'iterations) is longer than the decided length '
                    f'({total}): the lr never reaches its peak.')
                break

    # ----------------------------------------------------------- resume
    def _restore(self) -> None:
        """Take the decision (or the elapsed time) of a resumed run from the
        message hub; a fresh run (iteration 0) clears stale info."""
        hub = self.runner.message_hub
        info = hub.get_info(INFO_KEY) if self._iter > 0 else None
        if not info:
            hub.update_info(INFO_KEY, dict(total_iters=None, elapsed_s=0.0))
            return
        if info.get('total_iters') is None:
            # written before the decision: keep the time already spent
            self._t0 = wall_clock() - float(info.get('elapsed_s', 0.0))
            print_log(
                f'TimeBudgetTrainLoop: resumed at iteration {self._iter} '
                f'before the length was decided; {info.get("elapsed_s", 0):.1f}'
                ' s already spent, probing again.', logger='current')
            return
        if info.get('epoch_len') != self._epoch_len:
            print_log(
                f'TimeBudgetTrainLoop: the checkpoint was written with '
                f'{info.get("epoch_len")} iterations per epoch, this data '
                f'loader has {self._epoch_len}.', logger='current',
                level=logging.WARNING)
        self._apply(info)
        print_log(
            f'TimeBudgetTrainLoop: resumed at iteration {self._iter} of the '
            f'{self._total} decided at iteration {info["decided_at"]}.',
            logger='current')


def _as_list(schedulers) -> list:
    if schedulers is None:
        return []
    if isinstance(schedulers, dict):
        return [schedulers]
    return list(schedulers)


def apply_time_budget(cfg: Config, minutes: float, probe_iters: int = 20,
                      skip_iters: int = 3, reserve_ratio: float = 0.05,
                      max_epochs: Optional[int] = None,
                      val_interval: Optional[int] = None,
                      checkpoint_interval: Optional[int] = None) -> Config:
    """A copy of ``cfg`` that trains for ``minutes`` of wall time.

    ``cfg.param_scheduler`` must be an optional LinearLR warm-up by
    iteration (``by_epoch=False, begin=0``, ``end_factor`` 1), or by epoch
    with ``convert_to_iter_based=True`` (it becomes ``warmup_ratio``, its
    share of the cosine's ``T_max`` epochs), and a
    CosineAnnealingLR over the whole run (``begin=0``, ``T_max`` = length,
    by epoch or iteration, ``eta_min`` or ``eta_min_ratio``), as in the
    15-minute recipes; anything else raises ``ValueError``. The schedule is
    moved into ``train_cfg = dict(type='TimeBudgetTrainLoop', ...)``
    (``warmup_iters`` = the LinearLR's ``end``, ``warmup_start_factor`` =
    its ``start_factor``, ``eta_min_ratio`` = ``eta_min`` / the optimizer's
    lr) and ``param_scheduler`` is set to None. The config's epoch-based
    ``val_interval`` has no fixed meaning in a run of unknown length: the
    budgeted run validates every ``val_interval`` iterations and after the
    last one. The checkpoint and logger hooks keep working as they are (the
    loop runs real epochs); ``checkpoint_interval`` makes the checkpoints
    iteration-based (``by_epoch=False``).

    Args:
        cfg (Config): The config (not modified).
        minutes (float): The training budget in minutes.
        probe_iters (int): See :class:`TimeBudgetTrainLoop`. Defaults to 20.
        skip_iters (int): See :class:`TimeBudgetTrainLoop`. Defaults to 3.
        reserve_ratio (float): See :class:`TimeBudgetTrainLoop`. Defaults
            to 0.05.
        max_epochs (int, optional): Upper bound in epochs. Defaults to None.
        val_interval (int, optional): Iterations between validations.
            Defaults to None (after the last iteration only).
        checkpoint_interval (int, optional): Iterations between
            checkpoints. Defaults to None (the config's checkpoint hook).

    Returns:
        Config: The budgeted config.
    """
    cfg = copy.deepcopy(cfg)
    warmup, cosine = None, None
    for sched in _as_list(cfg.get('param_scheduler')):
        kind = sched.get('type')
        if kind == 'LinearLR' and warmup is None:
            by_epoch = sched.get('by_epoch', True)
            bad = [f'{k}={sched.get(k)!r}' for k, ok in (
                ('by_epoch', by_epoch is False or sched.get(
                    'convert_to_iter_based', False)),
                ('begin', sched.get('begin', 0) == 0),
                ('end', isinstance(sched.get('end'), int)),
                ('end_factor', sched.get('end_factor', 1.0) == 1.0),
                ('convert_to_iter_based', by_epoch or not sched.get(
                    'convert_to_iter_based', False))) if not ok]
            if bad:
                raise ValueError(
                    'apply_time_budget: the LinearLR warm-up must be by '
                    'iteration from 0 to a given end with end_factor 1 '
                    f'(by_epoch=False, begin=0, end=N); got {", ".join(bad)} '
                    f'in {sched!r}.')
            warmup = sched
        elif kind == 'CosineAnnealingLR' and cosine is None:
            t_max, end = sched.get('T_max'), sched.get('end', sched.get(
                'T_max'))
            if sched.get('begin', 0) != 0 or (end is not None
                                              and end != t_max):
                raise ValueError(
                    'apply_time_budget: the CosineAnnealingLR must anneal '
                    'over the whole run (begin=0, end=T_max); got '
                    f'{sched!r}.')
            cosine = sched
        else:
            raise ValueError(
                'apply_time_budget converts a LinearLR warm-up (by '
                'iteration) + CosineAnnealingLR schedule; cannot convert '
                f'{sched!r}.')
    if cosine is None:
        raise ValueError(
            'apply_time_budget: the config has no CosineAnnealingLR '
            f'(param_scheduler={cfg.get("param_scheduler")!r}); the budgeted '
            'loop anneals the lr with a cosine over the decided length.')
    if 'eta_min_ratio' in cosine and cosine['eta_min_ratio'] is not None:
        eta_min_ratio = float(cosine['eta_min_ratio'])
    else:
        eta_min = float(cosine.get('eta_min', 0.0) or 0.0)
        lr = cfg.get('optim_wrapper', {}).get('optimizer', {}).get('lr')
        if eta_min and not lr:
            raise ValueError(
                'apply_time_budget: cannot turn eta_min '
                f'{eta_min} into a ratio without optim_wrapper.optimizer.lr.')
        eta_min_ratio = eta_min / lr if eta_min else 0.0
    warmup_ratio = None
    if warmup is not None and warmup.get('by_epoch', True):
        # a warm-up of E epochs out of the cosine's T_max epochs: the same
        # share of the decided length
        warmup_ratio = float(warmup['end']) / float(cosine['T_max'])
    train_cfg = dict(
        type='TimeBudgetTrainLoop', minutes=minutes,
        probe_iters=probe_iters, skip_iters=skip_iters,
        reserve_ratio=reserve_ratio,
        warmup_iters=int(warmup['end']) if warmup and warmup_ratio is None
        else 0,
        warmup_start_factor=float(warmup.get('start_factor', 1.0 / 3))
        if warmup else 0.1,
        eta_min_ratio=eta_min_ratio, max_epochs=max_epochs,
        val_interval=val_interval)
    if warmup_ratio is not None:
        train_cfg['warmup_ratio'] = warmup_ratio
    cfg.train_cfg = train_cfg
    cfg.param_scheduler = None
    if checkpoint_interval is not None:
        _check_number('checkpoint_interval', checkpoint_interval, 1,
                      math.inf, integer=True, high_open=True)
        hooks = cfg.setdefault('default_hooks', {})
        ckpt = dict(hooks.get('checkpoint') or dict(type='CheckpointHook'))
        ckpt.update(by_epoch=False, interval=int(checkpoint_interval))
        hooks['checkpoint'] = ckpt
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if 'mm_instdisc.engine' not in imports:
        cfg.custom_imports = dict(
            imports=list(imports) + ['mm_instdisc.engine'],
            allow_failed_imports=cfg.get('custom_imports', {}).get(
                'allow_failed_imports', False))
    # checked as the loop will check them, before any training starts
    check_budget_args(**{k: v for k, v in train_cfg.items() if k != 'type'})
    return cfg
