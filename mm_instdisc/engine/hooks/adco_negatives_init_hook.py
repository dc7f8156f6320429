from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from mm_instdisc.engine.optimizers.adversarial_optim_wrapper import \
    AdversarialMixin


def find_adversarial_wrapper(optim_wrapper) -> AdversarialMixin:
    """The adversarial optimizer wrapper of a runner (also inside a dict)."""
    if isinstance(optim_wrapper, AdversarialMixin):
        return optim_wrapper
    if isinstance(optim_wrapper, OptimWrapperDict):
        found = [w for w in optim_wrapper.values()
                 if isinstance(w, AdversarialMixin)]
        if len(found) == 1:
            return found[0]
    raise TypeError(
        f'AdCo needs an optimizer wrapper that ascends its negatives, got '
        f'{type(optim_wrapper).__name__}. Set optim_wrapper.type='
        "'AdversarialOptimWrapper' (or 'AdversarialAmpOptimWrapper' / "
        "'AdversarialAutocastOptimWrapper' for mixed precision on a GPU / CPU, "
        "not 'AmpOptimWrapper' or 'AutocastOptimWrapper') with paramwise_cfg=dict("
        "custom_keys={'negatives': dict(adversarial=True, lr=3.0, "
        'momentum=0.9, weight_decay=1e-4)}).')


@HOOKS.register_module()
class AdCoNegativesInitHook(Hook):
    """Check, initialise and report AdCo's adversarial negatives.

    * ``before_train``: checks that the optimizer wrapper is adversarial
      (``AdversarialOptimWrapper``/``AdversarialAmpOptimWrapper``) and that
      its adversarial param groups hold exactly the model's
      ``negatives.weight`` (a custom key matching nothing, or matching
      encoder parameters, fails here instead of silently training wrong).
    * ``before_train_iter``: while the negatives are being initialised from
      keys (``AdCo(negatives_init='keys')``), freezes them in the optimizer
      (``adversarial_frozen``), as the official code leaves them untouched
      by the optimizer in that phase.
    * ``after_train_iter``: after the optimizer step, writes the iteration's
      all-gathered keys into the next columns (the model resets its key
      encoder when the last one is written) and logs ``train/neg_filled``
      (fraction filled) and column statistics every ``log_interval``
      iterations; warns once if, after the initialisation, the negatives'
      softmax mass (``neg_prob`` of the model's outputs) stays below
      ``dead_prob`` for ``dead_iters`` iterations in a row: their gradient
      is then about zero and they no longer take part in training (seen on
      small data with mem_t = 0.02; a larger ``head.mem_temperature``
      revives them).

    The initialisation state (``negatives.num_filled``) is part of the model,
    so it is checkpointed and a resumed run continues where it stopped.

    Args:
        log_interval (int): Iterations between statistics. Defaults to 50.
        dead_prob (float): ``neg_prob`` below which the negatives count as
            out of reach. Defaults to 1e-6.
        dead_iters (int): Consecutive such iterations before the warning;
            0 disables it. Defaults to 200.
    """

    priority = 'NORMAL'  # after the optimizer step, before CheckpointHook

    def __init__(self, log_interval: int = 50, dead_prob: float = 1e-6,
                 dead_iters: int = 200) -> None:
        if log_interval < 1:
            raise ValueError(f'Illegal log_interval: {log_interval}; must be '
                             '>= 1.')
        if dead_iters < 0:
            raise ValueError(f'Illegal dead_iters: {dead_iters}; must be >= '
                             '0.')
        self.log_interval = log_interval
        self.dead_prob = dead_prob
        self.dead_iters = dead_iters
        self._dead_count = 0
        self._warned_dead = False

    @staticmethod
    def _model(runner):
        model = get_ori_model(runner.model)
        if not (hasattr(model, 'negatives')
                and hasattr(model, 'flush_negatives_init')):
            raise TypeError('AdCoNegativesInitHook needs a model with '
                            'adversarial `negatives` (AdCo), got '
                            f'{type(model).__name__}.')
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        wrapper = find_adversarial_wrapper(runner.optim_wrapper)
        weight = model.negatives.weight
        adv = wrapper.adversarial_params()
        if not any(p is weight for p in adv):
            raise ValueError(
                "The model's negatives.weight is in no param group flagged "
                "adversarial=True: paramwise_cfg.custom_keys needs a key "
                "matching its name 'negatives.weight', e.g. "
                "custom_keys={'negatives': dict(adversarial=True, lr=3.0)}.")
        if len(adv) != 1:
            names = {id(p): n for n, p in model.named_parameters()}
            others = sorted(names.get(id(p), '?') for p in adv
                            if p is not weight)
            raise ValueError(
                f'Parameters other than negatives.weight are flagged '
                f'adversarial and would be trained by ascent: {others}. Make '
                'the custom key match only the negatives.')
        model.init_hook_attached = True
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
        model = self._model(runner)
        wrapper = find_adversarial_wrapper(runner.optim_wrapper)
        wrapper.adversarial_frozen = not model.negatives.initialised

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
        if self.every_n_train_iters(runner, self.log_interval):
            hub = runner.message_hub
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
                'mass). Consider a larger model.head.mem_temperature.')
