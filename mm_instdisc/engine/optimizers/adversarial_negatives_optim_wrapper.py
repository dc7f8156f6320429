"""The optimizer side of AdCo's adversarial negatives: one param group that
ascends, with its own lr, momentum and weight decay held against the param
schedulers and kept out of gradient clipping.

Two registered pieces, because mmengine splits the work in two:

* :class:`AdversarialNegativesOptimWrapperConstructor`
  (``OPTIM_WRAPPER_CONSTRUCTORS``) builds the param groups. Only a
  constructor sees the model's parameter *names* (an optim wrapper receives
  the built optimizer), and the groups must exist before the param
  schedulers record their initial values and before a resumed run loads the
  optimizer state.
* :class:`AdversarialNegativesOptimWrapper` (``OPTIM_WRAPPERS``) owns the
  group at run time. The constructor builds it *over* the configured
  ``type`` (``OptimWrapper``, ``AmpOptimWrapper``, ``AutocastOptimWrapper``
  ...) as a subclass of both (:func:`adversarial_negatives_wrapper_class`),
  so loss scaling, autocast, gradient accumulation and checkpointing are the
  precision wrapper's own code, not a delegation layer; ``type`` stays the
  precision choice, so a config inherits it from its base and ``--amp``
  still switches it.
"""
import copy
from typing import Dict, List, Optional, Sequence, Type

import torch
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from torch import nn

from mm_instdisc.utils.checkpoint import unwrap_model

#: Hyper-parameters of the negatives' group that the wrapper holds at their
#: initial values (``initial_<name>`` once a scheduler has recorded one).
PINNED = ('lr', 'momentum', 'weight_decay')
#: Param-group key the constructor marks the negatives' group(s) with.
MARK = 'adversarial_negatives'
#: Config arguments of the wrapper (the constructor adds ``negatives_key``).
NEGATIVES_ARGS = ('negatives_lr', 'negatives_momentum',
                  'negatives_weight_decay', 'schedule_negatives_lr')

NEW_FORM = ("optim_wrapper=dict(type='OptimWrapper', "
            "constructor='AdversarialNegativesOptimWrapperConstructor', "
            'optimizer=dict(...), negatives_lr=3.0, negatives_momentum=0.9, '
            'negatives_weight_decay=1e-4)')


@OPTIM_WRAPPERS.register_module()
class AdversarialNegativesOptimWrapper(OptimWrapper):
    """Optim wrapper whose negatives' param group ascends at its own pace.

    The AdCo update (`AdCo <https://arxiv.org/abs/2011.08435>`_, official
    code `maple-research-lab/AdCo
    <https://github.com/maple-research-lab/AdCo>`_): the encoder descends
    on the contrastive loss while the negatives ascend on it, with their own
    constant lr, momentum and weight decay. The negatives' group has torch's
    ``maximize=True`` (with SGD the gradient is negated before weight decay
    and momentum: the official :math:`v \\leftarrow m v - g + \\lambda W,\\
    W \\leftarrow W - lr\\,v`). Each :meth:`step`:

    * sets the group's lr, momentum and weight decay to their initial values
      (``initial_<name>`` once a param scheduler recorded one), so warm-up
      and cosine, which write every group, leave them constant; with
      ``schedule_negatives_lr=True`` the lr follows the schedulers from its
      own initial value, momentum and weight decay stay pinned;
    * while :attr:`negatives_frozen` (``AdCoNegativesInitHook`` sets it
      while the negatives are filled from keys) steps with the three at 0,
      so the negatives are untouched and get no momentum buffer, and
      restores them afterwards, before the schedulers step;
    * clips (``clip_grad``) only the other parameters: a global norm over
      the negatives' ascent gradients, which carry 1 / mem_t, would shrink
      the encoder's steps (the official code clips nothing).

    :meth:`get_lr` adds ``adversarial_lr`` (the lr of the negatives' next
    ascent step; mmengine logs it as ``train/adversarial_lr``).

    Built by :class:`AdversarialNegativesOptimWrapperConstructor`, which
    marks the group and combines this class with the configured ``type``::

        optim_wrapper = dict(
            type='AutocastOptimWrapper',  # or OptimWrapper, AmpOptimWrapper
            constructor='AdversarialNegativesOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                           weight_decay=1e-4),
            negatives_lr=3.0, negatives_momentum=0.9,
            negatives_weight_decay=1e-4)

    ``type='AdversarialNegativesOptimWrapper'`` with the constructor is the
    full-precision form. Initial values and momentum buffers live in the
    optimizer's state dict, so a resumed run continues where it stopped.

    Args:
        optimizer (Optimizer): The optimizer, whose negatives' group(s)
            carry ``adversarial_negatives=True`` (set by the constructor).
        negatives_lr (float): The negatives' lr. Defaults to 3.0 (official).
        negatives_momentum (float, optional): Their momentum; None keeps the
            optimizer's (an optimizer without ``momentum``, e.g. Adam, needs
            None). Defaults to 0.9.
        negatives_weight_decay (float): Their weight decay. Defaults to
            1e-4.
        schedule_negatives_lr (bool): Let the param schedulers drive the
            negatives' lr from ``negatives_lr``. Defaults to False (constant,
            as the official code).
        **kwargs: The arguments of the combined precision wrapper
            (``accumulative_counts``, ``clip_grad``, ``dtype`` ...).

    Raises:
        ValueError: For a negative lr or weight decay, a non-bool
            ``schedule_negatives_lr``, an optimizer without a ``maximize``
            option or without marked group, ``negatives_momentum`` for an
            optimizer without momentum.
    """

    def __init__(self,
                 optimizer: torch.optim.Optimizer,
                 negatives_lr: float = 3.0,
                 negatives_momentum: Optional[float] = 0.9,
                 negatives_weight_decay: float = 1e-4,
                 schedule_negatives_lr: bool = False,
                 **kwargs) -> None:
        for name, value in (('negatives_lr', negatives_lr),
                            ('negatives_weight_decay',
                             negatives_weight_decay)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'Illegal {name}: {value!r}; expected a '
                                 'number >= 0.')
        if negatives_momentum is not None and not (
                isinstance(negatives_momentum, (int, float))
                and 0 <= negatives_momentum < 1):
            raise ValueError(f'Illegal negatives_momentum: '
                             f'{negatives_momentum!r}; expected a number in '
                             '[0, 1) or None.')
        super().__init__(optimizer=optimizer, **kwargs)
        groups = [g for g in self.optimizer.param_groups if g.get(MARK)]
        if not groups:
            raise ValueError(
                f'{type(self).__name__}: no param group is marked as the '
                f"negatives' ({MARK}=True); build it through the constructor"
                f': {NEW_FORM}.')
        if negatives_momentum is not None and (
                'momentum' not in self.optimizer.defaults):
            raise ValueError(
                f'{type(self.optimizer).__name__} has no momentum; set '
                'negatives_momentum=None.')
        values = dict(lr=negatives_lr, weight_decay=negatives_weight_decay)
        if negatives_momentum is not None:
            values['momentum'] = negatives_momentum
        for g in groups:
            g.update(values)
        self.adopt_negatives([p for g in groups for p in g['params']],
                             schedule_negatives_lr)

    def adopt_negatives(self, params: Sequence[nn.Parameter],
                        schedule_negatives_lr: bool = False) -> None:
        """Make ``params``' groups this wrapper's negatives' groups, with
        their current hyper-parameters (``AdCoNegativesInitHook`` adopts an
        old-style ``custom_keys`` group this way).

        Raises:
            ValueError: If a parameter shares its group with others, the
                optimizer has no ``maximize`` option, or
                ``schedule_negatives_lr`` is not a bool.
        """
        if not isinstance(schedule_negatives_lr, bool):
            raise ValueError(f'schedule_negatives_lr must be True or False, '
                             f'got {schedule_negatives_lr!r}.')
        if 'maximize' not in self.optimizer.defaults:
            raise ValueError(
                f'{type(self.optimizer).__name__} has no maximize option, so '
                "it cannot ascend AdCo's negatives; use SGD (the paper's), "
                'Adam or AdamW.')
        #: the negatives' parameters (their groups are found by identity:
        #: loading a state dict replaces the group dicts)
        self.negatives_params: List[nn.Parameter] = list(params)
        self.schedule_negatives_lr = schedule_negatives_lr
        #: step with lr, momentum and weight decay 0 (initialisation phase)
        self.negatives_frozen = False
        for g in self.negatives_groups():
            g['maximize'] = True
            g[MARK] = True

    def negatives_groups(self) -> List[dict]:
        """The param groups of :attr:`negatives_params`."""
        ids = {id(p) for p in self.negatives_params}
        groups = [g for g in self.optimizer.param_groups
                  if any(id(p) in ids for p in g['params'])]
        for g in groups:
            if any(id(p) not in ids for p in g['params']):
                raise ValueError(
                    "AdCo's negatives share a param group with other "
                    'parameters, which would then ascend too; give them '
                    'their own group (the constructor does).')
        return groups

    def pinned(self, group: dict) -> Dict[str, float]:
        """The values the wrapper holds ``group`` at (its initial ones)."""
        keys = [k for k in PINNED if k in group
                and not (k == 'lr' and self.schedule_negatives_lr)]
        return {k: group.get(f'initial_{k}', group[k]) for k in keys}

    # ---------------------------------------------------------------- update
    def step(self, **kwargs) -> None:
        """Pin (and, while frozen, zero) the negatives' hyper-parameters,
        then the combined wrapper's step."""
        groups = self.negatives_groups()
        saved = []
        for g in groups:
            g.update(self.pinned(g))
            if self.negatives_frozen:
                kept = {k: g[k] for k in PINNED if k in g}
                saved.append((g, kept))
                g.update({k: 0.0 for k in kept})
        try:
            super().step(**kwargs)
        finally:
            for g, kept in saved:
                g.update(kept)

    def _clip_grad(self) -> None:
        """``OptimWrapper._clip_grad`` over every parameter but the
        negatives."""
        ids = {id(p) for p in self.negatives_params}
        params = [
            p for g in self.optimizer.param_groups for p in g['params']
            if id(p) not in ids and p.requires_grad and p.grad is not None
        ]
        if params:
            grad = self.clip_func(params, **self.clip_grad_kwargs)
            if grad is not None:  # clip_grad_value_ returns None
                self.message_hub.update_scalar(f'train/{self.grad_name}',
                                               float(grad))

    def get_lr(self) -> Dict[str, List[float]]:
        """``OptimWrapper.get_lr`` plus ``adversarial_lr``: the lr of the
        negatives' next (unfrozen) step."""
        res = super().get_lr()
        g = self.negatives_groups()[0]
        res['adversarial_lr'] = [float(self.pinned(g).get('lr', g['lr']))]
        return res

    def load_state_dict(self, state_dict: dict) -> None:
        """The combined wrapper's load; the negatives' groups stay marked
        ascending (a checkpoint of an old-style run has no mark)."""
        super().load_state_dict(state_dict)
        for g in self.negatives_groups():
            g['maximize'] = True
            g[MARK] = True


_COMBINED: Dict[type, type] = {}


def adversarial_negatives_wrapper_class(
        base: Type[OptimWrapper]) -> Type[AdversarialNegativesOptimWrapper]:
    """:class:`AdversarialNegativesOptimWrapper` combined with ``base``
    (``AdversarialNegatives<base>``, cached): its MRO runs the negatives'
    part, then ``base``'s own step, backward, context and state dict.

    Raises:
        TypeError: If ``base`` is not an ``OptimWrapper`` subclass.
    """
    if not (isinstance(base, type) and issubclass(base, OptimWrapper)):
        raise TypeError(f'Expected an OptimWrapper subclass to combine with '
                        f'AdversarialNegativesOptimWrapper, got {base!r}.')
    if issubclass(base, AdversarialNegativesOptimWrapper):
        return base
    if base not in _COMBINED:
        _COMBINED[base] = type(
            f'AdversarialNegatives{base.__name__}',
            (AdversarialNegativesOptimWrapper, base),
            dict(__module__=__name__,
                 __doc__=f'AdversarialNegativesOptimWrapper over '
                 f'{base.__name__}.'))
    return _COMBINED[base]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AdversarialNegativesOptimWrapperConstructor(
        DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that gives AdCo's negatives their
    own ascending param group and wraps the optimizer in
    :class:`AdversarialNegativesOptimWrapper` over the configured ``type``.

    The group comes from ``paramwise_cfg.custom_keys[negatives_key]`` (added
    here, so the groups are those of the former ``custom_keys`` form and
    its checkpoints resume); ``paramwise_cfg`` may hold other keys. The
    negatives' hyper-parameters are the wrapper's arguments
    (``negatives_lr`` ...), see :class:`AdversarialNegativesOptimWrapper`.

    Args:
        optim_wrapper_cfg (dict): ``optim_wrapper`` of the config less
            ``constructor`` and ``paramwise_cfg``; ``negatives_key`` (str,
            the name part that selects the negatives' parameters, default
            ``'negatives'``) is read here, the rest goes to the wrapper.
        paramwise_cfg (dict, optional): As for the default constructor.
            Defaults to None.

    Raises:
        ValueError: If ``custom_keys`` already sets the negatives' key (the
            former form: use the wrapper's arguments), the model has no
            trainable parameter named with ``negatives_key``, or another
            custom key takes precedence over it.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.negatives_key = optim_wrapper_cfg.pop('negatives_key',
                                                   'negatives')
        if not isinstance(self.negatives_key, str) or not self.negatives_key:
            raise ValueError(f'Illegal negatives_key: '
                             f'{self.negatives_key!r}; expected a non-empty '
                             'parameter name part.')
        paramwise_cfg = copy.deepcopy(dict(paramwise_cfg or {}))
        custom_keys = dict(paramwise_cfg.get('custom_keys') or {})
        if self.negatives_key in custom_keys:
            raise ValueError(
                f'paramwise_cfg.custom_keys sets {self.negatives_key!r}, the '
                "negatives' group that AdversarialNegativesOptimWrapper "
                'owns; give its lr, momentum and weight decay as the '
                "wrapper's negatives_lr, negatives_momentum, "
                'negatives_weight_decay instead.')
        custom_keys[self.negatives_key] = {MARK: True}
        paramwise_cfg['custom_keys'] = custom_keys
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> AdversarialNegativesOptimWrapper:
        module = unwrap_model(model)
        names = [n for n, p in module.named_parameters()
                 if self.negatives_key in n and p.requires_grad]
        if not names:
            raise ValueError(
                f'AdversarialNegativesOptimWrapperConstructor: '
                f'{type(module).__name__} has no trainable parameter whose '
                f'name contains negatives_key={self.negatives_key!r}; it '
                "needs AdCo's adversarial negatives (negatives.weight).")
        keys = sorted(sorted(self.paramwise_cfg['custom_keys']), key=len,
                      reverse=True)  # mmengine's order: the first match wins
        for name in names:
            first = next(k for k in keys if k in name)
            if first != self.negatives_key:
                raise ValueError(
                    f'paramwise_cfg.custom_keys[{first!r}] takes precedence '
                    f'over negatives_key={self.negatives_key!r} for {name}, '
                    'which would then not ascend; remove the overlapping '
                    'key.')
        base = self.optim_wrapper_cfg.get('type', 'OptimWrapper')
        if isinstance(base, str):
            base_cls = OPTIM_WRAPPERS.get(base)
            if base_cls is None:
                raise ValueError(f'Unknown optim wrapper type {base!r}.')
            base = base_cls
        self.optim_wrapper_cfg['type'] = adversarial_negatives_wrapper_class(
            base)
        try:
            wrapper = super().__call__(model)
        finally:
            self.optim_wrapper_cfg['type'] = base
        return wrapper
