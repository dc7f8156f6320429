"""AdversarialOptimWrapper: ascent for flagged groups, pinned hyper-parameters,
clear errors, state, gradient accumulation and the AMP path."""
import copy

import pytest
import torch
from torch import nn

NEG_GROUP = dict(adversarial=True, lr=3.0, momentum=0.9, weight_decay=1e-4)


class Toy(nn.Module):
    """An 'encoder' and 'negatives' with a min-max loss on both."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(4, 3)
        self.negatives = nn.Linear(3, 5, bias=False)

    def loss(self, x):
        # any differentiable function of both will do
        return (self.negatives(torch.tanh(self.encoder(x)))**2).mean()


def build(model=None, custom=None, type_='AdversarialOptimWrapper', lr=0.1,
          **kwargs):
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


def manual_sgd(p, grad, lr, wd, buf=None, momentum=0.9):
    d = grad + wd * p
    buf = d.clone() if buf is None else momentum * buf + d
    return p - lr * buf, buf


def test_flagged_group_ascends_others_descend():
    model, wrapper = build()
    assert [g['params'][0] is model.negatives.weight
            for g in wrapper.adversarial_groups()] == [True]
    x = torch.randn(8, 4)
    loss = model.loss(x)
    grads = torch.autograd.grad(loss, [model.encoder.weight,
                                       model.negatives.weight])
    enc0 = model.encoder.weight.detach().clone()
    neg0 = model.negatives.weight.detach().clone()
    wrapper.update_params(model.loss(x))
    enc_ref, _ = manual_sgd(enc0, grads[0], 0.1, 1e-4)
    neg_ref, _ = manual_sgd(neg0, -grads[1], 3.0, 1e-4)  # ascent
    assert torch.allclose(model.encoder.weight, enc_ref, atol=1e-6)
    assert torch.allclose(model.negatives.weight, neg_ref, atol=1e-6)
    with torch.no_grad():
        assert model.loss(x) != loss  # sanity: something moved


def test_no_adversarial_group_is_a_clear_error():
    with pytest.raises(ValueError, match='no param group is flagged'):
        build(custom={})
    with pytest.raises(ValueError, match='no param group is flagged'):
        build(custom={'negatives': dict(lr=3.0)})


@pytest.mark.parametrize('custom, match', [
    ({'negatives': dict(adversrial=True)}, "did you mean 'adversarial'"),
    ({'negatives': dict(adversarial_=True)}, "did you mean 'adversarial'"),
    ({'negatives': dict(adversarial='yes')}, 'must be True or False'),
    ({'': dict(adversarial=True)}, 'every param group is flagged'),
])
def test_bad_flags(custom, match):
    with pytest.raises(ValueError, match=match):
        build(custom=custom)


def test_plain_sgd_without_paramwise_cfg_is_rejected():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.engine  # noqa: F401
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='no param group is flagged'):
        build_optim_wrapper(Toy(), dict(type='AdversarialOptimWrapper',
                                        optimizer=dict(type='SGD', lr=0.1)))


def test_hyper_parameters_are_pinned_against_schedulers():
    """Cosine, warm-up and momentum schedulers move every group; the
    adversarial group still steps with lr 3, momentum 0.9, wd 1e-4."""
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
    seen = []
    inner_step = wrapper.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append([(g['lr'], g['momentum'], g['weight_decay'],
                      g.get('adversarial', False))
                     for g in wrapper.optimizer.param_groups])
        return inner_step(*args, **kwargs)

    wrapper.optimizer.step = recording_step
    x = torch.randn(8, 4)
    for _ in range(8):
        wrapper.update_params(model.loss(x))
        for s in scheds:
            s.step()
    assert len(seen) == 8
    enc_lrs = []
    for groups in seen:
        for lr, mom, wd, adv in groups:
            if adv:
                assert (lr, mom, wd) == (3.0, 0.9, 1e-4)
            else:
                enc_lrs.append(lr)
    assert len(set(enc_lrs)) > 4  # the encoder's lr was scheduled
    assert wrapper.get_lr()['adversarial_lr'] == [3.0]


def test_state_dict_round_trip_continues_identically():
    x = torch.randn(8, 4)
    model, wrapper = build()
    for _ in range(2):
        wrapper.update_params(model.loss(x))
    state = wrapper.state_dict()
    neg_id = [i for i, g in enumerate(state['param_groups'])
              if g.get('adversarial')]
    assert len(neg_id) == 1
    neg_param = state['param_groups'][neg_id[0]]['params'][0]
    assert 'momentum_buffer' in state['state'][neg_param]
    assert state['adversarial_hparams'] == [
        dict(lr=3.0, momentum=0.9, weight_decay=1e-4)]
    model2, wrapper2 = build(model=copy.deepcopy(model))
    wrapper2.load_state_dict(copy.deepcopy(state))
    for _ in range(2):
        wrapper.update_params(model.loss(x))
        wrapper2.update_params(model2.loss(x))
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
    model_c, _ = build()
    assert not torch.allclose(model_a.negatives.weight,
                              model_c.negatives.weight)


def test_frozen_adversarial_group_is_untouched():
    model, wrapper = build()
    neg0 = model.negatives.weight.detach().clone()
    enc0 = model.encoder.weight.detach().clone()
    wrapper.adversarial_frozen = True
    wrapper.update_params(model.loss(torch.randn(8, 4)))
    assert torch.equal(model.negatives.weight, neg0)
    assert not torch.equal(model.encoder.weight, enc0)
    assert model.negatives.weight not in wrapper.optimizer.state
    wrapper.adversarial_frozen = False
    wrapper.update_params(model.loss(torch.randn(8, 4)))
    assert not torch.equal(model.negatives.weight, neg0)


def test_clip_grad_leaves_the_adversarial_group_alone():
    x = torch.randn(8, 4)
    model_a, clipped = build(clip_grad=dict(max_norm=1e-3))
    model_b, plain = build()
    clipped.update_params(model_a.loss(x))
    plain.update_params(model_b.loss(x))
    assert torch.equal(model_a.negatives.weight, model_b.negatives.weight)
    assert not torch.allclose(model_a.encoder.weight, model_b.encoder.weight)


def build_amp(monkeypatch, init_scale=1024.):
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    model, wrapper = build(type_='AdversarialAmpOptimWrapper')
    # a real, enabled grad scaler on CPU (torch.amp supports it)
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)
    return model, wrapper


def test_amp_path_matches_full_precision(monkeypatch):
    x = torch.randn(8, 4)
    model_a, amp = build_amp(monkeypatch)
    model_b, plain = build()
    for _ in range(3):
        amp.update_params(model_a.loss(x))
        plain.update_params(model_b.loss(x))
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert 'loss_scaler' in amp.state_dict()
    assert 'adversarial_hparams' in amp.state_dict()


def test_amp_skips_the_whole_step_on_inf(monkeypatch):
    model, amp = build_amp(monkeypatch)
    params0 = [p.detach().clone() for p in model.parameters()]
    loss = model.loss(torch.randn(8, 4)) * float('inf')
    amp.update_params(loss)
    for p, p0 in zip(model.parameters(), params0):
        assert torch.equal(p, p0)
    assert amp.loss_scaler.get_scale() < 1024.


def test_schedule_adversarial_lr_lets_schedulers_drive_the_lr():
    """schedule_adversarial_lr=True: warm-up and cosine scale the
    adversarial group's lr from its own initial 3.0 (momentum and weight
    decay stay pinned); the ascent still ascends."""
    from mmengine.optim import CosineAnnealingLR, LinearLR
    model, wrapper = build(schedule_adversarial_lr=True)
    scheds = [
        LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0, end=3),
        CosineAnnealingLR(wrapper, T_max=10, by_epoch=False, begin=3,
                          end=10),
    ]
    x = torch.randn(8, 4)
    adv_lrs, ratios = [], []
    for _ in range(8):
        neg0 = model.negatives.weight.detach().clone()
        grad = torch.autograd.grad(model.loss(x), model.negatives.weight)[0]
        wrapper.update_params(model.loss(x))
        groups = wrapper.optimizer.param_groups
        (adv, ) = [g for g in groups if g.get('adversarial', False)]
        enc = next(g for g in groups if not g.get('adversarial', False))
        assert (adv['momentum'], adv['weight_decay']) == (0.9, 1e-4)
        adv_lrs.append(adv['lr'])
        ratios.append(adv['lr'] / enc['lr'])
        assert wrapper.get_lr()['adversarial_lr'] == [adv['lr']]
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
    with pytest.raises(ValueError, match='schedule_adversarial_lr'):
        build(schedule_adversarial_lr='yes')
