"""AdversarialNegativesOptimWrapper (and its constructor): AdCo's negatives
ascend with their own lr / momentum / weight decay held against the param
schedulers, out of clip_grad, over fp32, AMP and CPU autocast wrappers; the
deprecated custom_keys form trains bit-identically."""
import copy
import warnings

import pytest
import torch
from torch import nn

from tests.helpers import tiny_adco_cfg, write_fashion_mnist

NEG = dict(negatives_lr=3.0, negatives_momentum=0.9,
           negatives_weight_decay=1e-4)
CONSTRUCTOR = 'AdversarialNegativesOptimWrapperConstructor'


class Toy(nn.Module):
    """An 'encoder' and 'negatives' with a min-max loss on both."""

    def __init__(self, with_negatives=True):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(4, 3)
        if with_negatives:
            self.negatives = nn.Module()
            self.negatives.weight = nn.Parameter(torch.randn(5, 3))

    def loss(self, x):
        h = torch.tanh(self.encoder(x))
        return (nn.functional.linear(h, self.negatives.weight)**2).mean()


def build(model=None, type_='OptimWrapper', **kwargs):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.engine  # noqa: F401
    init_default_scope('mmpretrain')
    model = model or Toy()
    cfg = dict(type=type_, constructor=CONSTRUCTOR,
               optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                              weight_decay=1e-4), **{**NEG, **kwargs})
    return model, build_optim_wrapper(model, cfg)


def schedulers(wrapper):
    from mmengine.optim import CosineAnnealingLR, LinearLR
    return [LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0,
                     end=3),
            CosineAnnealingLR(wrapper, T_max=8, by_epoch=False, begin=3,
                              end=8)]


def record_steps(wrapper):
    """(lr, momentum, wd, maximize) of each group at every optimizer step."""
    seen, inner = [], wrapper.optimizer.step

    def step(*args, **kwargs):
        seen.append([(g['lr'], g['momentum'], g['weight_decay'],
                      g.get('maximize', False))
                     for g in wrapper.optimizer.param_groups])
        return inner(*args, **kwargs)

    wrapper.optimizer.step = step
    return seen


def test_matches_plain_torch_descent_and_constant_ascent():
    """Reference: SGD descent on the encoder at the scheduled lr, and a
    separate SGD(maximize=True, lr 3, momentum 0.9, wd 1e-4) on the
    negatives; bit-identical after 8 scheduled steps."""
    from mmengine.optim import OptimWrapper
    from mmpretrain.registry import OPTIM_WRAPPERS

    from mm_instdisc.engine.optimizers import AdversarialNegativesOptimWrapper
    assert OPTIM_WRAPPERS.get('AdversarialNegativesOptimWrapper') is \
        AdversarialNegativesOptimWrapper
    model, wrapper = build()
    assert isinstance(wrapper, AdversarialNegativesOptimWrapper)
    assert isinstance(wrapper, OptimWrapper)
    ref = copy.deepcopy(model)
    enc_opt = torch.optim.SGD(ref.encoder.parameters(), lr=0.1, momentum=0.9,
                              weight_decay=1e-4)
    neg_opt = torch.optim.SGD([ref.negatives.weight], lr=3.0, momentum=0.9,
                              weight_decay=1e-4, maximize=True)
    scheds = schedulers(wrapper)
    x = torch.randn(8, 4)
    for _ in range(8):
        enc_lr = [g['lr'] for g in wrapper.optimizer.param_groups
                  if not g.get('maximize')]
        assert len(set(enc_lr)) == 1
        wrapper.update_params(model.loss(x))
        for g in enc_opt.param_groups:
            g['lr'] = enc_lr[0]
        ref.loss(x).backward()
        enc_opt.step()
        neg_opt.step()
        enc_opt.zero_grad()
        neg_opt.zero_grad()
        for s in scheds:
            s.step()
    for (name, a), b in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(a, b), name
    assert wrapper.get_lr()['adversarial_lr'] == [3.0]


def test_schedule_negatives_lr_follows_the_schedulers():
    model, wrapper = build(schedule_negatives_lr=True)
    scheds = schedulers(wrapper)
    seen = record_steps(wrapper)
    x = torch.randn(8, 4)
    for _ in range(8):
        wrapper.update_params(model.loss(x))
        for s in scheds:
            s.step()
    neg = [[g[:3] for g in groups if g[3]][0] for groups in seen]
    enc = [[g[0] for g in groups if not g[3]][0] for groups in seen]
    assert all(m == 0.9 and wd == 1e-4 for _, m, wd in neg)
    assert neg[0][0] == pytest.approx(0.3)  # 3.0 x warm-up start 0.1
    assert len({lr for lr, _, _ in neg}) > 4
    assert [n[0] / e for n, e in zip(neg, enc)] == pytest.approx([30.] * 8)


def test_frozen_steps_leave_the_negatives_untouched():
    model, wrapper = build()
    neg0 = model.negatives.weight.detach().clone()
    enc0 = model.encoder.weight.detach().clone()
    wrapper.negatives_frozen = True
    wrapper.update_params(model.loss(torch.randn(8, 4)))
    assert torch.equal(model.negatives.weight, neg0)
    assert not torch.equal(model.encoder.weight, enc0)
    assert model.negatives.weight not in wrapper.optimizer.state
    (g, ) = wrapper.negatives_groups()
    assert (g['lr'], g['momentum'], g['weight_decay']) == (3.0, 0.9, 1e-4)


def test_clip_grad_excludes_the_negatives():
    """The encoder's gradient is clipped to max_norm over the encoder
    alone (grad_norm logged); the negatives step as without clipping."""
    x = torch.randn(8, 4)
    model_c, clipped = build(clip_grad=dict(max_norm=1e-3))
    model_u, unclipped = build()
    grads = torch.autograd.grad(model_c.loss(x),
                                list(model_c.encoder.parameters()))
    enc_norm = float(torch.cat([g.flatten() for g in grads]).norm())
    assert enc_norm > 1e-3  # so the clip matters
    clipped.update_params(model_c.loss(x))
    unclipped.update_params(model_u.loss(x))
    assert torch.equal(model_c.negatives.weight, model_u.negatives.weight)
    assert not torch.equal(model_c.encoder.weight, model_u.encoder.weight)
    logged = clipped.message_hub.get_scalar('train/grad_norm').current()
    assert logged == pytest.approx(enc_norm, rel=1e-5)


def test_combines_with_amp_and_cpu_autocast(monkeypatch):
    from mmengine.optim import AmpOptimWrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    from mm_instdisc.engine.optimizers import (
        AdversarialNegativesOptimWrapper, AutocastOptimWrapper)
    x = torch.randn(8, 4)
    model_a, auto = build(type_='AutocastOptimWrapper',
                          cpu_bf16_fallback=False)
    assert isinstance(auto, AutocastOptimWrapper)
    assert isinstance(auto, AdversarialNegativesOptimWrapper)
    neg0 = model_a.negatives.weight.detach().clone()
    with auto.optim_context(model_a):
        loss = model_a.loss(x)
    auto.update_params(loss)
    assert not torch.equal(model_a.negatives.weight, neg0)
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    model_b, amp = build(type_='AmpOptimWrapper')
    model_c, plain = build()
    amp.loss_scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
    assert isinstance(amp, AmpOptimWrapper)
    for _ in range(3):
        amp.update_params(model_b.loss(x))
        plain.update_params(model_c.loss(x))
    for a, b in zip(model_b.parameters(), model_c.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert 'loss_scaler' in amp.state_dict()


def test_state_dict_round_trip_keeps_the_ascent():
    x = torch.randn(8, 4)
    model, wrapper = build()
    for _ in range(2):
        wrapper.update_params(model.loss(x))
    state = copy.deepcopy(wrapper.state_dict())
    model2, wrapper2 = build(model=copy.deepcopy(model))
    for g in state['param_groups']:  # a checkpoint of the former form
        g.pop('adversarial_negatives', None)
    wrapper2.load_state_dict(state)
    assert [g['params'] for g in wrapper2.negatives_groups()] == [
        [model2.negatives.weight]]
    for _ in range(2):
        wrapper.update_params(model.loss(x))
        wrapper2.update_params(model2.loss(x))
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize('model, kwargs, match', [
    (Toy(with_negatives=False), {}, "no trainable parameter whose name "
     "contains negatives_key='negatives'"),
    (None, dict(negatives_key='bank'), "negatives_key='bank'"),
    (None, dict(paramwise_cfg=dict(custom_keys={'negatives': dict(
        maximize=True, lr=3.0)})), 'negatives_lr, negatives_momentum'),
    (None, dict(paramwise_cfg=dict(custom_keys={'negatives.weight': dict(
        lr_mult=1.0)})), 'takes precedence'),
    (None, dict(negatives_lr=-1.0), 'Illegal negatives_lr: -1.0'),
    (None, dict(negatives_momentum=1.5), 'Illegal negatives_momentum'),
    (None, dict(schedule_negatives_lr='yes'), 'schedule_negatives_lr'),
])
def test_bad_setups_are_clear_errors(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(model=model, **kwargs)


def test_without_the_constructor_is_a_clear_error():
    from mmengine.optim import build_optim_wrapper
    with pytest.raises(ValueError, match=CONSTRUCTOR):
        build_optim_wrapper(Toy(), dict(
            type='AdversarialNegativesOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1), **NEG))


# -------------------------------------------- the deprecated form, Runner
@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def _adco_hook(cfg):
    return next(h for h in cfg.custom_hooks
                if h['type'] == 'AdCoNegativesInitHook')


def old_form(cfg, scheduled):
    """The former config: maximize=True through custom_keys, the hook
    pinning (``schedule_adversarial_lr``)."""
    cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer,
        paramwise_cfg=dict(custom_keys={'negatives': dict(
            maximize=True, lr=3.0, momentum=0.9, weight_decay=1e-4)}))
    _adco_hook(cfg)['schedule_adversarial_lr'] = scheduled


def train_tiny(cfg):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    return runner


@pytest.mark.parametrize('scheduled', [False, True])
def test_old_form_trains_bit_identically(data_root, tmp_path, scheduled):
    """8 iterations (1 frozen while filling 16 negatives from keys, 7
    ascents) under warm-up + cosine: old and new form give the same
    weights, negatives and optimizer state; the old form warns."""
    runs = {}
    for form in ('old', 'new'):
        cfg = tiny_adco_cfg(data_root, tmp_path / form, epochs=2,
                            num_negatives=16)
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=3),
            dict(type='CosineAnnealingLR', T_max=8, by_epoch=False,
                 begin=3, end=8)]
        assert cfg.optim_wrapper.constructor == CONSTRUCTOR
        if form == 'old':
            old_form(cfg, scheduled)
            with pytest.warns(DeprecationWarning, match='deprecated'):
                runs[form] = train_tiny(cfg)
        else:
            cfg.optim_wrapper.schedule_negatives_lr = scheduled
            with warnings.catch_warnings():
                warnings.simplefilter('error', DeprecationWarning)
                runs[form] = train_tiny(cfg)
    a, b = runs['old'].model.state_dict(), runs['new'].model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = (r.optim_wrapper.state_dict() for r in runs.values())
    assert sa['state'].keys() == sb['state'].keys()
    for pid in sa['state']:
        for name, v in sa['state'][pid].items():
            assert torch.equal(v, sb['state'][pid][name])
    assert not torch.equal(a['negatives.weight'],
                           runs['old'].model.negatives.weight.new_zeros(1))


def test_hook_flag_with_the_new_wrapper_is_a_clear_error(data_root,
                                                         tmp_path):
    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=1)
    _adco_hook(cfg)['schedule_adversarial_lr'] = True
    with pytest.raises(ValueError, match='schedule_negatives_lr'):
        train_tiny(cfg)
