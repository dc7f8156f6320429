from typing import Dict, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

#: Hyper-parameters of the negatives' param group that the hook pins to
#: their initial values (``initial_<name>`` once a scheduler has run).
PINNED = ('lr', 'momentum', 'weight_decay')

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


@HOOKS.register_module()
class AdCoNegativesInitHook(Hook):
    """Everything AdCo's adversarial negatives need from the training loop.

    The ascent itself is the optimizer's: the negatives' param group has
    ``maximize=True`` (torch's SGD, Adam, AdamW ... read it per group), set
    through ``paramwise_cfg.custom_keys`` like any per-group option::

        optim_wrapper = dict(
            type='OptimWrapper',  # or AmpOptimWrapper, AutocastOptimWrapper
            optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                           weight_decay=1e-4),
            paramwise_cfg=dict(custom_keys={'negatives': dict(
                maximize=True, lr=3.0, momentum=0.9, weight_decay=1e-4)}))

    so any optim wrapper ascends them, mmpretrain's ``tools/train.py
    --amp`` included (with SGD, maximize negates the gradient before weight
    decay and momentum: exactly the official update
    :math:`v \\leftarrow m v - g + \\lambda W,\\ W \\leftarrow W - lr\\,v`).
    This hook does the rest:

    * ``before_train``: checks that the negatives' group has
      ``maximize=True`` and holds only ``negatives.weight``, that no other
      group ascends, and that no ``clip_grad`` is set (a global norm would
      mix the negatives' large ascent gradients, which carry 1/mem_t, into
      the encoder's clipping; the official code clips nothing).
    * ``before_train_iter``: pins the group's lr, momentum and weight
      decay to their initial values, so param schedulers (which write every
      group) leave them constant as in the official code; with
      ``schedule_adversarial_lr=True`` the lr follows the schedulers from
      its own initial value, momentum and weight decay stay pinned. While
      the negatives are initialised from keys (``AdCo(negatives_init=
      'keys')``) the group's lr, momentum and weight decay are 0 for the
      step, so the negatives are untouched and get no momentum buffer, as
      the official code leaves them; ``after_train_iter`` restores them
      before the schedulers step.
    * ``after_train_iter``: after the optimizer step, writes the
      iteration's all-gathered keys into the next columns (the model resets
      its key encoder when the last one is written, unless
      ``reset_key_encoder=False``), logs ``train/adversarial_lr``,
      ``train/neg_filled`` and column statistics every ``log_interval``
      iterations, and warns once if, after the initialisation, the
      negatives' softmax mass (``neg_prob``) stays below ``dead_prob`` for
      ``dead_iters`` iterations in a row: their gradient is then about zero
      and they no longer take part in training (a larger
      ``head.loss.mem_temperature`` revives them).

    The initialisation state (``negatives.num_filled``) is part of the
    model and the initial hyper-parameters are part of the optimizer's
    param groups, so a resumed run continues where it stopped.

    Args:
        schedule_adversarial_lr (bool): Let param schedulers drive the
            negatives' lr. Defaults to False (constant, as the official
            AdCo code).
        log_interval (int): Iterations between statistics. Defaults to 50.
        dead_prob (float): ``neg_prob`` below which the negatives count as
            out of reach. Defaults to 1e-6.
        dead_iters (int): Consecutive such iterations before the warning;
            0 disables it. Defaults to 200.
    """

    priority = 'NORMAL'  # after the step, before ParamSchedulerHook (LOW)

    def __init__(self, schedule_adversarial_lr: bool = False,
                 log_interval: int = 50, dead_prob: float = 1e-6,
                 dead_iters: int = 200) -> None:
        if not isinstance(schedule_adversarial_lr, bool):
            raise ValueError(f'schedule_adversarial_lr must be True or False, '
                             f'got {schedule_adversarial_lr!r}.')
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
        self._group: Optional[dict] = None
        self._frozen: Optional[Dict[str, float]] = None

    @staticmethod
    def _model(runner):
        model = get_ori_model(runner.model)
        if not (hasattr(model, 'negatives')
                and hasattr(model, 'flush_negatives_init')):
            raise TypeError('AdCoNegativesInitHook needs a model with '
                            'adversarial `negatives` (AdCo), got '
                            f'{type(model).__name__}.')
        return model

    # ------------------------------------------------------------- checks
    def check_optimizer(self, model, optim_wrapper) -> dict:
        """The negatives' param group, after checking the optimizer setup
        (raises a ValueError naming the fix)."""
        weight = model.negatives.weight
        wrapper, group = negatives_param_group(optim_wrapper, weight)
        optimizer = wrapper.optimizer
        for i, g in enumerate(optimizer.param_groups):
            if 'adversarial' in g:
                raise ValueError(
                    f"Param group {i} has the key 'adversarial': the "
                    'adversarial optim wrappers are gone; ascend the '
                    "negatives with torch's maximize=True instead, "
                    f'{_EXAMPLE}, and any optim wrapper type.')
        if 'maximize' not in optimizer.defaults:
            raise ValueError(
                f'{type(optimizer).__name__} has no maximize option, so it '
                "cannot ascend AdCo's negatives; use SGD (the paper's), "
                'Adam or AdamW.')
        if group.get('maximize') is not True:
            raise ValueError(
                "The param group of AdCo's negatives.weight does not have "
                "maximize=True, so the negatives would descend with the "
                'encoder instead of ascending; set ' + _EXAMPLE + '.')
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
                'AdCo with optim_wrapper.clip_grad: the global norm would mix '
                "the negatives' ascent gradients (which carry 1/mem_t) into "
                "the encoder's clipping; the official code clips nothing. "
                'Remove clip_grad.')
        return group

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = self._model(runner)
        self._group = self.check_optimizer(model, runner.optim_wrapper)
        neg = model.negatives
        if neg.initialised:
            runner.logger.info(f'AdCo negatives ready ({neg.init} init, '
                               f'K={neg.num_negatives}): {neg.stats()}')
        else:
            runner.logger.info(
                f'AdCo negatives: initialising from keys, '
                f'{int(neg.num_filled)}/{neg.num_negatives} columns filled; '
                'they are frozen until all are filled.')

    def pinned(self) -> Dict[str, float]:
        """The values this hook holds the negatives' group at."""
        g = self._group
        keys = [k for k in PINNED if k in g
                and not (k == 'lr' and self.schedule_adversarial_lr)]
        return {k: g.get(f'initial_{k}', g[k]) for k in keys}

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[Sequence[dict]] = None) -> None:
        self._group.update(self.pinned())
        if not self._model(runner).negatives.initialised:
            keys = [k for k in PINNED if k in self._group]
            self._frozen = {k: self._group[k] for k in keys}
            self._group.update({k: 0.0 for k in keys})

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        if self._frozen is not None:
            self._group.update(self._frozen)
            self._frozen = None
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
        if self._group is not None:
            hub.update_scalar('train/adversarial_lr',
                              float(self._group['lr']))
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
