import copy
import difflib
from typing import Dict, List

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

from .cpu_amp_optim_wrapper import AutocastOptimWrapper

#: The param-group flag that marks parameters to be updated by ascent.
ADVERSARIAL_KEY = 'adversarial'
#: Hyper-parameters of adversarial groups kept constant (param schedulers
#: cannot change them).
PINNED_KEYS = ('lr', 'momentum', 'weight_decay')


class AdversarialMixin:
    """Gradient ascent for the param groups flagged ``adversarial=True``.

    Shared by :class:`AdversarialOptimWrapper` and
    :class:`AdversarialAmpOptimWrapper`; see the former for the behaviour.
    """

    optimizer: torch.optim.Optimizer

    def _setup_adversarial(self, schedule_lr: bool = False) -> None:
        if not isinstance(schedule_lr, bool):
            raise ValueError(f'schedule_adversarial_lr must be True or False, '
                             f'got {schedule_lr!r}.')
        self.schedule_adversarial_lr = schedule_lr
        groups = self.optimizer.param_groups
        for i, group in enumerate(groups):
            for key in group:
                if key == ADVERSARIAL_KEY or key == 'params':
                    continue
                if 'advers' in key.lower() or difflib.get_close_matches(
                        key, [ADVERSARIAL_KEY], n=1, cutoff=0.8):
                    raise ValueError(
                        f'Param group {i} has an unknown key {key!r}; did '
                        f'you mean {ADVERSARIAL_KEY!r}? (check '
                        'paramwise_cfg.custom_keys)')
            flag = group.get(ADVERSARIAL_KEY, False)
            if not isinstance(flag, bool):
                raise ValueError(f'Param group {i}: {ADVERSARIAL_KEY!r} must '
                                 f'be True or False, got {flag!r}.')
        adv = [g for g in groups if g.get(ADVERSARIAL_KEY, False)]
        if not adv:
            raise ValueError(
                f'{type(self).__name__}: no param group is flagged '
                f'{ADVERSARIAL_KEY}=True, so nothing would be updated by '
                'gradient ascent. Flag the adversarial parameters, e.g. '
                "paramwise_cfg=dict(custom_keys={'negatives': dict("
                'adversarial=True, lr=3.0, momentum=0.9, weight_decay=1e-4)}) '
                "for AdCo's negatives.")
        if len(adv) == len(groups):
            raise ValueError(f'{type(self).__name__}: every param group is '
                             'flagged adversarial; nothing would descend. '
                             'Check paramwise_cfg.custom_keys.')
        # with schedule_adversarial_lr the param schedulers drive the lr of
        # the adversarial groups too (from their own initial lr)
        pinned_keys = tuple(k for k in PINNED_KEYS
                            if not (schedule_lr and k == 'lr'))
        self._pinned: List[Dict[str, float]] = [
            {k: g[k] for k in pinned_keys if k in g} for g in adv]
        #: While True, the adversarial gradients are dropped before the step
        #: (no ascent, no weight decay, no momentum): AdCo's initialisation
        #: phase. Set each iteration by ``AdCoNegativesInitHook``.
        self.adversarial_frozen = False

    # -------------------------------------------------------------- queries
    def adversarial_groups(self) -> List[dict]:
        """The param groups flagged ``adversarial=True``."""
        return [g for g in self.optimizer.param_groups
                if g.get(ADVERSARIAL_KEY, False)]

    def adversarial_params(self) -> List[nn.Parameter]:
        """All parameters updated by gradient ascent."""
        return [p for g in self.adversarial_groups() for p in g['params']]

    def is_adversarial(self, param: nn.Parameter) -> bool:
        """Whether ``param`` is updated by gradient ascent."""
        return any(p is param for p in self.adversarial_params())

    @property
    def adversarial_hparams(self) -> List[Dict[str, float]]:
        """Pinned lr / momentum / weight decay of each adversarial group."""
        return copy.deepcopy(self._pinned)

    # ---------------------------------------------------------------- update
    @torch.no_grad()
    def _prepare_adversarial(self) -> None:
        """Pin the hyper-parameters, then negate (or drop) the gradients."""
        for group, pinned in zip(self.adversarial_groups(), self._pinned):
            group.update(pinned)  # undo whatever a scheduler wrote
            for p in group['params']:
                if p.grad is None:
                    continue
                if self.adversarial_frozen:
                    p.grad = None
                else:
                    p.grad.neg_()

    def step(self, **kwargs) -> None:
        """Negate the adversarial gradients, then step as the parent does."""
        self._prepare_adversarial()
        super().step(**kwargs)  # type: ignore[misc]

    def _clip_grad(self) -> None:
        """Clip only the descending groups' gradients.

        The adversarial gradients (large: they carry 1/mem_t) would otherwise
        dominate a global norm; the official AdCo code clips nothing.
        """
        clip_grad_kwargs = getattr(self, 'clip_grad_kwargs', None)
        if not clip_grad_kwargs:
            return
        params = [
            p for g in self.optimizer.param_groups
            if not g.get(ADVERSARIAL_KEY, False) for p in g['params']
            if p.requires_grad and p.grad is not None
        ]
        if params:
            grad = self.clip_func(params,  # type: ignore[attr-defined]
                                  **clip_grad_kwargs)
            if grad is not None:
                self.message_hub.update_scalar(  # type: ignore[attr-defined]
                    f'train/{self.grad_name}',  # type: ignore[attr-defined]
                    float(grad))

    # ----------------------------------------------------------------- state
    def get_lr(self) -> Dict[str, List[float]]:
        """Learning rates, plus ``adversarial_lr`` (logged as such)."""
        res = super().get_lr()  # type: ignore[misc]
        res['adversarial_lr'] = [
            p['lr'] if 'lr' in p else g['lr']
            for p, g in zip(self._pinned, self.adversarial_groups())]
        if not res['adversarial_lr']:
            del res['adversarial_lr']
        return res

    def state_dict(self) -> dict:
        """The parent's state plus the pinned adversarial hyper-parameters.

        The negatives' momentum buffers are optimizer state and come with it.
        """
        state = super().state_dict()  # type: ignore[misc]
        state['adversarial_hparams'] = copy.deepcopy(self._pinned)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the parent's state and the pinned hyper-parameters."""
        state_dict = dict(state_dict)
        pinned = state_dict.pop('adversarial_hparams', None)
        super().load_state_dict(state_dict)  # type: ignore[misc]
        if pinned is not None:
            if len(pinned) != len(self._pinned):
                raise ValueError(
                    f'Checkpoint has {len(pinned)} adversarial param groups, '
                    f'this optimizer {len(self._pinned)}.')
            self._pinned = copy.deepcopy(pinned)


@OPTIM_WRAPPERS.register_module()
class AdversarialOptimWrapper(AdversarialMixin, OptimWrapper):
    """Optimizer wrapper that ascends the param groups flagged adversarial.

    Built for AdCo's negatives (whose loss the model returns with a gradient
    of the loss they maximise), usable for any min-max pair trained by one
    backward. Flag the adversarial parameters through ``paramwise_cfg``;
    ``DefaultOptimWrapperConstructor`` copies every key of a custom key's
    dict into its param group::

        optim_wrapper = dict(
            type='AdversarialOptimWrapper',
            optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                           weight_decay=1e-4),
            paramwise_cfg=dict(custom_keys={
                'negatives': dict(adversarial=True, lr=3.0, momentum=0.9,
                                  weight_decay=1e-4)}))

    (``lr`` given absolutely, not as ``lr_mult``, so ``auto_scale_lr`` does
    not scale it; the official AdCo code keeps it at 3.)

    At every :meth:`step`:

    * the adversarial groups' ``lr``, ``momentum`` and ``weight_decay`` are
      reset to their values at construction, so param schedulers (which
      write every group) do not change them: they are constant (with
      ``schedule_adversarial_lr=True`` the ``lr`` follows the param
      schedulers from its own initial value, as the other groups' do);
    * their gradients are negated, so the optimizer's descent step is an
      ascent step on the loss. With SGD this is exactly the official update
      :math:`v \\leftarrow m v - g + \\lambda W,\\ W \\leftarrow W - lr\\,v`
      (weight decay still pulls towards 0);
    * if :attr:`adversarial_frozen` is set, their gradients are dropped
      instead (no update, no momentum, no weight decay);
    * gradient clipping (``clip_grad``) applies to the other groups only.

    Gradient accumulation (``accumulative_counts``) works unchanged: the
    gradients accumulate as computed and are negated once, at the step.
    ``state_dict`` holds the optimizer state (the negatives' momentum
    buffers included) and the pinned hyper-parameters.

    Args:
        optimizer (Optimizer): The optimizer, with at least one param group
            flagged ``adversarial=True`` and at least one not.
        schedule_adversarial_lr (bool): Let param schedulers drive the
            adversarial groups' lr (momentum and weight decay stay pinned).
            Defaults to False (constant, as the official AdCo code).
        **kwargs: ``accumulative_counts``, ``clip_grad`` of ``OptimWrapper``.

    Raises:
        ValueError: If no (or every) param group is flagged, a flag is not a
            bool, or a group has a key that looks like a misspelt flag.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 schedule_adversarial_lr: bool = False, **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self._setup_adversarial(schedule_adversarial_lr)


@OPTIM_WRAPPERS.register_module()
class AdversarialAmpOptimWrapper(AdversarialMixin, AmpOptimWrapper):
    """:class:`AdversarialOptimWrapper` with automatic mixed precision.

    ``AmpOptimWrapper``'s loss scaling, unscaling and inf/NaN step skipping,
    with the adversarial behaviour of :class:`AdversarialOptimWrapper`
    (negation commutes with the loss scale; a skipped step skips the
    negatives too). Use this type instead of ``AmpOptimWrapper`` (a plain
    ``AmpOptimWrapper`` would let the negatives descend).

    Args:
        optimizer (Optimizer): As for :class:`AdversarialOptimWrapper`.
        schedule_adversarial_lr (bool): As for
            :class:`AdversarialOptimWrapper`.
        **kwargs: ``loss_scale``, ``dtype`` ... of ``AmpOptimWrapper``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 schedule_adversarial_lr: bool = False, **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self._setup_adversarial(schedule_adversarial_lr)


@OPTIM_WRAPPERS.register_module()
class AdversarialAutocastOptimWrapper(AdversarialMixin, AutocastOptimWrapper):
    """:class:`AdversarialOptimWrapper` under ``torch.autocast`` in bfloat16,
    also on CPU (:class:`AutocastOptimWrapper`; no loss scaling for bf16).

    Args:
        optimizer (Optimizer): As for :class:`AdversarialOptimWrapper`.
        schedule_adversarial_lr (bool): As for
            :class:`AdversarialOptimWrapper`.
        **kwargs: ``dtype``, ``device_type``, ``channels_last`` ... of
            :class:`AutocastOptimWrapper`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 schedule_adversarial_lr: bool = False, **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self._setup_adversarial(schedule_adversarial_lr)
