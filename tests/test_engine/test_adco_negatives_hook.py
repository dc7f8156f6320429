"""AdCo's negatives through stock optim wrappers: the ascent (torch's
maximize=True in their param group) and AdCoNegativesInitHook's share
(pinned hyper-parameters, the frozen initialisation steps, clear errors),
with state, gradient accumulation and the AMP path."""
import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

NEG_GROUP = dict(maximize=True, lr=3.0, momentum=0.9, weight_decay=1e-4)


class ToyNegatives(nn.Module):

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 3))
        self.initialised = True
        self.num_filled = torch.tensor(5)
        self.num_negatives = 5
        self.init = 'random'

    def stats(self):
        return dict(norm_max=float(self.weight.norm(dim=1).max()))


class Toy(nn.Module):
    """An 'encoder' and 'negatives' with a min-max loss on both, and the
    interface of AdCo that the hook uses."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(4, 3)
        self.negatives = ToyNegatives()
        self.flushed = 0

    def loss(self, x):
        # any differentiable function of both will do
        h = torch.tanh(self.encoder(x))
        return (nn.functional.linear(h, self.negatives.weight)**2).mean()

    def flush_negatives_init(self):
        self.flushed += 1
        return 0


def build(model=None, custom=None, type_='OptimWrapper', lr=0.1, **kwargs):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.engine  # noqa: F401
    init_default_scope('mmpretrain')
    model = model or Toy()
    custom = {'negatives': dict(NEG_GROUP)} if custom is None else custom
    cfg = dict(type=type_,
               optimizer=dict(type='SGD', lr=lr, momentum=0.9,
                              weight_decay=1e-4),
               paramwise_cfg=dict(custom_keys=custom), **kwargs)
    return model, build_optim_wrapper(model, cfg)


class Loop:
    """The hook's calls around each step, as the runner makes them."""

    def __init__(self, model, wrapper, **hook_args):
        from mmengine.logging import MessageHub

        from mm_instdisc.engine.hooks import AdCoNegativesInitHook
        self.hook = AdCoNegativesInitHook(**hook_args)
        self.hub = MessageHub.get_instance('test_adco_negatives_hook')
        self.runner = SimpleNamespace(
            model=model, optim_wrapper=wrapper, message_hub=self.hub,
            logger=SimpleNamespace(info=lambda *a: None,
                                   warning=lambda *a: None), iter=0)
        self.hook.before_train(self.runner)

    def step(self, loss_fn):
        self.hook.before_train_iter(self.runner, self.runner.iter)
        self.runner.optim_wrapper.update_params(loss_fn())
        self.hook.after_train_iter(self.runner, self.runner.iter)
        self.runner.iter += 1


def neg_group(wrapper):
    (g, ) = [g for g in wrapper.optimizer.param_groups
             if g.get('maximize', False)]
    return g


def manual_sgd(p, grad, lr, wd, buf=None, momentum=0.9):
    d = grad + wd * p
    buf = d.clone() if buf is None else momentum * buf + d
    return p - lr * buf, buf


def test_maximize_group_ascends_others_descend():
    model, wrapper = build()
    loop = Loop(model, wrapper)
    x = torch.randn(8, 4)
    grads = torch.autograd.grad(model.loss(x), [model.encoder.weight,
                                                model.negatives.weight])
    enc0 = model.encoder.weight.detach().clone()
    neg0 = model.negatives.weight.detach().clone()
    loop.step(lambda: model.loss(x))
    enc_ref, _ = manual_sgd(enc0, grads[0], 0.1, 1e-4)
    neg_ref, _ = manual_sgd(neg0, -grads[1], 3.0, 1e-4)  # ascent
    assert torch.allclose(model.encoder.weight, enc_ref, atol=1e-6)
    assert torch.allclose(model.negatives.weight, neg_ref, atol=1e-6)
    assert model.flushed == 1  # the keys are written after the step
    # the wrapper reports it (mmengine logs it as train/adversarial_lr)
    assert wrapper.get_lr()['adversarial_lr'] == [3.0]


@pytest.mark.parametrize('custom, kwargs, match', [
    ({}, {}, 'does not have maximize=True'),
    ({'negatives': dict(lr=3.0)}, {}, 'does not have maximize=True'),
    ({'negatives': dict(adversarial=True, lr=3.0)}, {},
     "the key 'adversarial'"),
    ({'': dict(maximize=True)}, {}, r"other than negatives.weight.*"
     r"'encoder.weight'"),
    ({'negatives': dict(NEG_GROUP), 'encoder.bias': dict(maximize=True)},
     {}, r"\['encoder.bias'\]"),
    ({'negatives': dict(NEG_GROUP)}, dict(clip_grad=dict(max_norm=1.0)),
     'Remove clip_grad'),
])
def test_bad_optimizer_setups_are_clear_errors(custom, kwargs, match):
    model, wrapper = build(custom=custom, **kwargs)
    with pytest.raises(ValueError, match=match):
        Loop(model, wrapper)


def test_hyper_parameters_are_pinned_against_schedulers():
    """Warm-up, cosine and momentum schedulers move every group; the
    negatives still step with lr 3, momentum 0.9, wd 1e-4."""
    from mmengine.optim import (CosineAnnealingLR, CosineAnnealingMomentum,
                                LinearLR)
    model, wrapper = build()
    scheds = [
        LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0, end=3),
        CosineAnnealingLR(wrapper, T_max=10, by_epoch=False, begin=3,
                          end=10),
        CosineAnnealingMomentum(wrapper, T_max=10, eta_min=0.5,
                                by_epoch=False),
    ]
    loop = Loop(model, wrapper)
    seen = []
    inner_step = wrapper.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append([(g['lr'], g['momentum'], g['weight_decay'],
                      g.get('maximize', False))
                     for g in wrapper.optimizer.param_groups])
        return inner_step(*args, **kwargs)

    wrapper.optimizer.step = recording_step
    x = torch.randn(8, 4)
    for _ in range(8):
        loop.step(lambda: model.loss(x))
        for s in scheds:
            s.step()
    assert len(seen) == 8
    enc_lrs = []
    for groups in seen:
        for lr, mom, wd, ascends in groups:
            if ascends:
                assert (lr, mom, wd) == (3.0, 0.9, 1e-4)
            else:
                enc_lrs.append(lr)
    assert len(set(enc_lrs)) > 4  # the encoder's lr was scheduled


def test_schedule_adversarial_lr_lets_schedulers_drive_the_lr():
    """schedule_adversarial_lr=True: warm-up and cosine scale the
    negatives' lr from its own initial 3.0 (momentum and weight decay stay
    pinned); they still ascend."""
    from mmengine.optim import CosineAnnealingLR, LinearLR
    model, wrapper = build()
    scheds = [
        LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0, end=3),
        CosineAnnealingLR(wrapper, T_max=10, by_epoch=False, begin=3,
                          end=10),
    ]
    loop = Loop(model, wrapper, schedule_adversarial_lr=True)
    x = torch.randn(8, 4)
    adv_lrs, ratios = [], []
    for _ in range(8):
        neg0 = model.negatives.weight.detach().clone()
        grad = torch.autograd.grad(model.loss(x), model.negatives.weight)[0]
        loop.step(lambda: model.loss(x))
        adv = neg_group(wrapper)
        enc = wrapper.optimizer.param_groups[0]
        assert (adv['momentum'], adv['weight_decay']) == (0.9, 1e-4)
        adv_lrs.append(adv['lr'])
        ratios.append(adv['lr'] / enc['lr'])
        if len(adv_lrs) == 1:  # first step: plain SGD, no momentum yet
            ref, _ = manual_sgd(neg0, -grad, adv['lr'], 1e-4)
            assert torch.allclose(model.negatives.weight, ref, atol=1e-6)
        for s in scheds:
            s.step()
    assert adv_lrs[0] == pytest.approx(0.3)  # 3.0 x warm-up start 0.1
    assert len(set(adv_lrs)) > 4
    # the same schedule as the encoder's: a constant ratio 3.0 / 0.1
    assert ratios == pytest.approx([30.0] * len(ratios))


def test_schedule_adversarial_lr_must_be_a_bool():
    from mm_instdisc.engine.hooks import AdCoNegativesInitHook
    with pytest.raises(ValueError, match='schedule_adversarial_lr'):
        AdCoNegativesInitHook(schedule_adversarial_lr='yes')


def test_negatives_are_untouched_while_initialised_from_keys():
    """The initialisation steps: no ascent, no weight decay, no momentum
    buffer (the official code leaves them alone); the encoder trains, and
    the negatives' hyper-parameters are back for the schedulers after
    each step."""
    from mmengine.optim import LinearLR
    model, wrapper = build()
    sched = LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0,
                     end=3)
    loop = Loop(model, wrapper, schedule_adversarial_lr=True)
    model.negatives.initialised = False
    neg0 = model.negatives.weight.detach().clone()
    enc0 = model.encoder.weight.detach().clone()
    loop.step(lambda: model.loss(torch.randn(8, 4)))
    assert torch.equal(model.negatives.weight, neg0)
    assert not torch.equal(model.encoder.weight, enc0)
    assert model.negatives.weight not in wrapper.optimizer.state
    g = neg_group(wrapper)
    assert (g['lr'], g['momentum'], g['weight_decay']) == pytest.approx(
        (0.3, 0.9, 1e-4))
    sched.step()  # the chained warm-up continues from 0.3, not from 0
    enc = wrapper.optimizer.param_groups[0]
    assert g['lr'] > 0.3 and g['lr'] / enc['lr'] == pytest.approx(30.0)
    model.negatives.initialised = True
    loop.step(lambda: model.loss(torch.randn(8, 4)))
    assert not torch.equal(model.negatives.weight, neg0)
    assert 'momentum_buffer' in wrapper.optimizer.state[
        model.negatives.weight]


def test_state_dict_round_trip_continues_identically():
    x = torch.randn(8, 4)
    model, wrapper = build()
    loop = Loop(model, wrapper)
    for _ in range(2):
        loop.step(lambda: model.loss(x))
    state = wrapper.state_dict()
    (neg_id, ) = [i for i, g in enumerate(state['param_groups'])
                  if g.get('maximize')]
    neg_param = state['param_groups'][neg_id]['params'][0]
    assert 'momentum_buffer' in state['state'][neg_param]
    model2, wrapper2 = build(model=copy.deepcopy(model))
    wrapper2.load_state_dict(copy.deepcopy(state))
    loop2 = Loop(model2, wrapper2)
    for _ in range(2):
        loop.step(lambda: model.loss(x))
        loop2.step(lambda: model2.loss(x))
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_gradient_accumulation_equals_one_big_step():
    """Two accumulated half-batches == one step on the mean of both."""
    x = torch.randn(8, 4)
    model_a, acc = build(accumulative_counts=2)
    model_b, single = build()
    for _ in range(2):  # two full cycles, so momentum is involved
        acc.update_params(model_a.loss(x[:4]))
        acc.update_params(model_a.loss(x[4:]))
        single.update_params(0.5 * (model_b.loss(x[:4]) +
                                    model_b.loss(x[4:])))
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # and the negatives did ascend (differ from a descent run)
    model_c, descent = build(custom={})
    for _ in range(2):
        descent.update_params(model_c.loss(x))
    assert not torch.allclose(model_a.negatives.weight,
                              model_c.negatives.weight, atol=1e-4)


def build_amp(monkeypatch, init_scale=1024.):
    """mmengine's stock AmpOptimWrapper (what mmpretrain's --amp selects),
    with a real, enabled grad scaler on CPU."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    model, wrapper = build(type_='AmpOptimWrapper')
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)
    return model, wrapper


def test_stock_amp_wrapper_ascends_as_full_precision(monkeypatch):
    x = torch.randn(8, 4)
    model_a, amp = build_amp(monkeypatch)
    model_b, plain = build()
    loop_a, loop_b = Loop(model_a, amp), Loop(model_b, plain)
    for _ in range(3):
        loop_a.step(lambda: model_a.loss(x))
        loop_b.step(lambda: model_b.loss(x))
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert 'loss_scaler' in amp.state_dict()


def test_amp_skips_the_whole_step_on_inf(monkeypatch):
    model, amp = build_amp(monkeypatch)
    loop = Loop(model, amp)
    params0 = [p.detach().clone() for p in model.parameters()]
    loop.step(lambda: model.loss(torch.randn(8, 4)) * float('inf'))
    for p, p0 in zip(model.parameters(), params0):
        assert torch.equal(p, p0)
    assert amp.loss_scaler.get_scale() < 1024.
