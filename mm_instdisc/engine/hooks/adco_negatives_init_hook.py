import functools
import warnings
import weakref
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS

from mm_instdisc.utils.checkpoint import unwrap_model

from ..optimizers.adversarial_negatives_optim_wrapper import (
    NEW_FORM, AdversarialNegativesOptimWrapper,
    adversarial_negatives_wrapper_class)

_EXAMPLE = ("paramwise_cfg=dict(custom_keys={'negatives': dict(maximize=True, "
            "lr=3.0, momentum=0.9, weight_decay=1e-4)})")


def negatives_param_group(optim_wrapper, weight):
    """(optim wrapper, param group) that holds ``weight`` (also inside an
    ``OptimWrapperDict``)."""
    wrappers = (list(optim_wrapper.values())
                if isinstance(optim_wrapper, OptimWrapperDict)
                else [optim_wrapper])
    for wrapper in wrappers:
        for group in wrapper.optimizer.param_groups:
            if any(p is weight for p in group['params']):
                return wrapper, group
    raise ValueError("AdCo's negatives.weight is in no optimizer param group; "
                     'is the optimizer built over the whole model?')


def _rebind_counted_step(wrapper) -> None:
    """mmengine's param schedulers replace ``wrapper.step`` by a counting
    wrapper around the function of the class at that time; after the class
    changed, count around the new class's ``step`` instead."""
    old = wrapper.__dict__.get('step')
    if not getattr(old, '_with_counter', False):
        return
    ref = weakref.ref(wrapper)
    func = type(wrapper).step

    @functools.wraps(func)
    def counted(*args, **kwargs):
        instance = ref()
        instance._global_step += 1
        return func(instance, *args, **kwargs)

    counted._with_counter = True
    wrapper.step = counted


@HOOKS.register_module()
class AdCoNegativesInitHook(Hook):
    """Initialises AdCo's adversarial negatives from keys, and watches them.

    The negatives' optimisation (ascent, their own lr / momentum / weight
    decay held against the param schedulers, no gradient clipping) belongs
    to :class:`~mm_instdisc.engine.optimizers.AdversarialNegativesOptimWrapper`::

        optim_wrapper = dict(
            type='OptimWrapper',  # or AmpOptimWrapper, AutocastOptimWrapper
            constructor='AdversarialNegativesOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                           weight_decay=1e-4),
            negatives_lr=3.0, negatives_momentum=0.9,
            negatives_weight_decay=1e-4)

    This hook does what depends on the model's initialisation state:

    * ``before_train``: checks that the wrapper owns ``negatives.weight``
      and logs the negatives' state.
    * ``before_train_iter``: while the negatives are initialised from keys
      (``AdCo(negatives_init='keys')``) sets the wrapper's
      ``negatives_frozen``, so their step has lr, momentum and weight decay
      0 (untouched, no momentum buffer, as the official code leaves them).
    * ``after_train_iter``: after the optimizer step, writes the
      iteration's all-gathered keys into the next columns (the model resets
      its key encoder when the last one is written, unless
      ``reset_key_encoder=False``), logs ``train/neg_filled`` and column
      statistics every ``log_interval`` iterations, and warns once if, after
      the initialisation, the negatives' softmax mass (``neg_prob``) stays
      below ``dead_prob`` for ``dead_iters`` iterations in a row: their
      gradient is then about zero and they no longer take part in training
      (a larger ``head.loss.mem_temperature`` revives them).

    Deprecated form: a plain wrapper whose negatives' group has
    ``maximize=True`` through ``paramwise_cfg.custom_keys``
    (``custom_keys={'negatives': dict(maximize=True, lr=3.0, ...)}``) is
    still accepted with a ``DeprecationWarning``: the hook checks it as
    before (only ``negatives.weight`` ascends, no ``clip_grad``) and turns
    the wrapper into the adversarial one in place, with the group's values
    and ``schedule_adversarial_lr`` as ``schedule_negatives_lr``; the
    updates are the same as the new form's.

    The initialisation state (``negatives.num_filled``) is part of the
    model and the negatives' initial hyper-parameters are part of the
    optimizer's param groups, so a resumed run continues where it stopped.

    Args:
        schedule_adversarial_lr (bool, optional): Deprecated form only: let
            the param schedulers drive the negatives' lr (now the wrapper's
            ``schedule_negatives_lr``). None (default) means False there;
            with the wrapper it must stay None.
        log_interval (int): Iterations between statistics. Defaults to 50.
        dead_prob (float): ``neg_prob`` below which the negatives count as
            out of reach. Defaults to 1e-6.
        dead_iters (int): Consecutive such iterations before the warning;
            0 disables it. Defaults to 200.
    """

    priority = 'NORMAL'  # after the step, before ParamSchedulerHook (LOW)

    def __init__(self, schedule_adversarial_lr: Optional[bool] = None,
                 log_interval: int = 50, dead_prob: float = 1e-6,
                 dead_iters: int = 200) -> None:
        if schedule_adversarial_lr not in (None, True, False):
            raise ValueError(f'schedule_adversarial_lr must be True, False '
                             f'or None, got {schedule_adversarial_lr!r}.')
        if log_interval < 1:
            raise ValueError(f'Illegal log_interval: {log_interval}; must be '
                             '>= 1.')
        if dead_iters < 0:
            raise ValueError(f'Illegal dead_iters: {dead_iters}; must be >= '
                             '0.')
        self.schedule_adversarial_lr = schedule_adversarial_lr
        self.log_interval = log_interval
        self.dead_prob = dead_prob
        self.dead_iters = dead_iters
        self._dead_count = 0
        self._warned_dead = False
        self._wrapper: Optional[AdversarialNegativesOptimWrapper] = None

    @staticmethod
    def _model(runner):
        model = unwrap_model(runner.model)
        if not (hasattr(model, 'negatives')
                and hasattr(model, 'flush_negatives_init')):
            raise TypeError('AdCoNegativesInitHook needs a model with '
                            'adversarial `negatives` (AdCo), got '
                            f'{type(model).__name__}.')
        return model

    # ------------------------------------------------------------- checks
    def check_optimizer(self, model, optim_wrapper) -> dict:
        """Deprecated form: the negatives' param group, after checking the
        ``custom_keys`` setup (raises a ValueError naming the fix)."""
        weight = model.negatives.weight
        wrapper, group = negatives_param_group(optim_wrapper, weight)
        optimizer = wrapper.optimizer
        for i, g in enumerate(optimizer.param_groups):
            if 'adversarial' in g:
                raise ValueError(
                    f"Param group {i} has the key 'adversarial': the "
                    'adversarial optim wrappers of that form are gone; use '
                    f'{NEW_FORM}.')
        if 'maximize' not in optimizer.defaults:
            raise ValueError(
                f'{type(optimizer).__name__} has no maximize option, so it '
                "cannot ascend AdCo's negatives; use SGD (the paper's), "
                'Adam or AdamW.')
        if group.get('maximize') is not True:
            raise ValueError(
                "The param group of AdCo's negatives.weight does not have "
                "maximize=True, so the negatives would descend with the "
                f'encoder instead of ascending; use {NEW_FORM}.')
        others = [p for p in group['params'] if p is not weight]
        ascending = [p for g in optimizer.param_groups
                     if g is not group and g.get('maximize') is True
                     for p in g['params']]
        if others or ascending:
            names = {id(p): n for n, p in model.named_parameters()}
            bad = sorted(names.get(id(p), '?') for p in others + ascending)
            raise ValueError(
                f'Parameters other than negatives.weight would be trained by '
                f'ascent (maximize=True): {bad}. Make the custom key match '
                "only the negatives ('negatives').")
        if getattr(wrapper, 'clip_grad_kwargs', None):
            raise ValueError(
                'AdCo with optim_wrapper.clip_grad in the deprecated '
                'custom_keys form: the global norm would mix the negatives\' '
                "ascent gradients (which carry 1/mem_t) into the encoder's "
                'clipping. Remove clip_grad, or use the adversarial wrapper '
                f'(it clips only the encoder): {NEW_FORM}.')
        return group

    def _adversarial_wrapper(self, model, optim_wrapper):
        """The wrapper that owns ``model.negatives.weight``; a deprecated
        ``custom_keys`` wrapper is checked and converted in place."""
        weight = model.negatives.weight
        wrappers = (list(optim_wrapper.values())
                    if isinstance(optim_wrapper, OptimWrapperDict)
                    else [optim_wrapper])
        for w in wrappers:
            if isinstance(w, AdversarialNegativesOptimWrapper) and any(
                    p is weight for p in w.negatives_params):
                if self.schedule_adversarial_lr is not None:
                    raise ValueError(
                        'AdCoNegativesInitHook(schedule_adversarial_lr=...) '
                        'is the deprecated custom_keys form; with '
                        'AdversarialNegativesOptimWrapper set '
                        'optim_wrapper.schedule_negatives_lr instead.')
                return w
        if any(isinstance(w, AdversarialNegativesOptimWrapper)
               for w in wrappers):
            raise ValueError(
                'AdversarialNegativesOptimWrapper does not own AdCo\'s '
                'negatives.weight; is its negatives_key right?')
        self.check_optimizer(model, optim_wrapper)
        wrapper, _ = negatives_param_group(optim_wrapper, weight)
        warnings.warn(
            "AdCo's negatives ascend through paramwise_cfg.custom_keys "
            "(maximize=True) and AdCoNegativesInitHook's pinning: this form "
            f'is deprecated; use {NEW_FORM} (schedule_adversarial_lr of the '
            'hook becomes the wrapper\'s schedule_negatives_lr).',
            DeprecationWarning, stacklevel=2)
        wrapper.__class__ = adversarial_negatives_wrapper_class(
            type(wrapper))
        _rebind_counted_step(wrapper)
        wrapper.adopt_negatives([weight],
                                bool(self.schedule_adversarial_lr))
        return wrapper

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = self._model(runner)
        self._wrapper = self._adversarial_wrapper(model, runner.optim_wrapper)
        neg = model.negatives
        if neg.initialised:
            runner.logger.info(f'AdCo negatives ready ({neg.init} init, '
                               f'K={neg.num_negatives}): {neg.stats()}')
        else:
            runner.logger.info(
                f'AdCo negatives: initialising from keys, '
                f'{int(neg.num_filled)}/{neg.num_negatives} columns filled; '
                'they are frozen until all are filled.')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[Sequence[dict]] = None) -> None:
        self._wrapper.negatives_frozen = not self._model(
            runner).negatives.initialised

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        model = self._model(runner)
        neg = model.negatives
        was_ready = neg.initialised
        model.flush_negatives_init()
        if not was_ready and neg.initialised:
            reset = getattr(model, 'reset_key_encoder_after_init', True)
            runner.logger.info(
                f'AdCo negatives initialised from keys after iteration '
                f'{runner.iter + 1}; ' +
                ('key encoder reset to the query encoder.' if reset else
                 'key encoder kept (reset_key_encoder=False).'))
        if was_ready and outputs and 'neg_prob' in outputs:
            self._check_alive(runner, float(outputs['neg_prob']))
        hub = runner.message_hub
        if self.every_n_train_iters(runner, self.log_interval):
            hub.update_scalar('train/neg_filled',
                              int(neg.num_filled) / neg.num_negatives)
            for k, v in neg.stats().items():
                hub.update_scalar(f'train/neg_{k}', v)

    def _check_alive(self, runner, neg_prob: float) -> None:
        if self.dead_iters == 0 or self._warned_dead:
            return
        self._dead_count = (self._dead_count + 1
                            if neg_prob < self.dead_prob else 0)
        if self._dead_count >= self.dead_iters:
            self._warned_dead = True
            runner.logger.warning(
                f'AdCo negatives out of reach: their softmax mass at mem_t '
                f'(neg_prob) has stayed below {self.dead_prob} for '
                f'{self.dead_iters} iterations, so their gradient is about '
                'zero and they no longer adapt (the batch keys take all the '
                'mass). Consider a larger model.head.loss.mem_temperature.')
