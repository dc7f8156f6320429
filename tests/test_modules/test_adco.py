"""AdCo maths: negatives, both players' losses, the ascent gradient."""
import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import AdCoLoss, AdversarialNegatives
from mm_instdisc.modules import adco as adco_module


def unit(*shape, dim=-1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64),
                       dim=dim)


def raw_negatives(d, k, seed=1):
    """Raw columns with very different norms (0.3 to 3), float64."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    scale = torch.linspace(0.3, 3.0, k, dtype=torch.float64)
    return (F.normalize(w, dim=0) * scale).requires_grad_()


def slow_loss(q, k, w_hat, temperature, pos_offset=0, batch_negatives=True):
    """Cross-entropy written out row by row, the obvious way."""
    total = 0.0
    for i in range(q.shape[0]):
        pos = float(q[i] @ k[pos_offset + i])
        if batch_negatives:
            others = [float(q[i] @ k[m]) for m in range(k.shape[0])
                      if m != pos_offset + i]
        else:
            others = []
        others += [float(q[i] @ w_hat[:, j]) for j in range(w_hat.shape[1])]
        denom = math.exp(pos / temperature) + sum(
            math.exp(o / temperature) for o in others)
        total += -math.log(math.exp(pos / temperature) / denom)
    return total / q.shape[0]


def closed_form_grad(q, k, w, mem_t, pos_offset=0, batch_negatives=True):
    """d(negatives loss at mem_t) / dW, derived by hand (the official code's
    ``g`` before its sign flip).

    With z_i = [q_i.k | q_i.w_hat] / mem_t and p_ij = softmax(z_i) at negative
    j: dL/dl_ij = p_ij / (B mem_t), so dL/dw_hat_j = sum_i p_ij q_i /
    (B mem_t) =: G_j, and through w_hat = w / |w| (Jacobian (I - w_hat
    w_hat^T) / |w|): dL/dw_j = (G_j - w_hat_j (w_hat_j . G_j)) / |w_j|, where
    w_hat_j . G_j = mean_i p_ij l_ij / mem_t.
    """
    b = q.shape[0]
    norms = w.norm(dim=0)  # (K, )
    w_hat = w / norms
    l_neg = q @ w_hat  # (B, K)
    if batch_negatives:
        l_pos = q @ k.t()
    else:
        l_pos = (q * k[pos_offset:pos_offset + b]).sum(1, keepdim=True)
    p = torch.softmax(torch.cat([l_pos, l_neg], 1) / mem_t,
                      dim=1)[:, l_pos.shape[1]:]  # (B, K)
    g = q.t() @ p / b - (p * l_neg).mean(0) * w_hat  # official code's g
    return g / norms / mem_t


def test_docstring_examples():
    result = doctest.testmod(adco_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# ------------------------------------------------------------- negatives
def test_init_from_keys_fills_columns_in_order():
    neg = AdversarialNegatives(num_negatives=10, feat_dim=4)
    assert not neg.initialised and int(neg.num_filled) == 0
    k1, k2, k3 = (torch.randn(4, 4) * 5 for _ in range(3))
    assert neg.init_from_keys(k1) == 4
    assert neg.init_from_keys(k2) == 4
    assert not neg.initialised
    assert neg.init_from_keys(k3) == 2  # only two columns left
    assert neg.initialised and int(neg.num_filled) == 10
    expected = F.normalize(torch.cat([k1, k2, k3[:2]]), dim=1).t()
    assert torch.allclose(neg.weight, expected, atol=1e-6)
    assert neg.init_from_keys(torch.randn(4, 4)) == 0  # full: nothing moves
    assert torch.allclose(neg.weight, expected, atol=1e-6)


def test_random_init_is_initialised_and_unit():
    neg = AdversarialNegatives(num_negatives=7, feat_dim=3, init='random')
    assert neg.initialised
    assert torch.allclose(neg.weight.norm(dim=0), torch.ones(7), atol=1e-6)
    w = neg()
    assert w.shape == (3, 7) and w.requires_grad


def test_state_dict_holds_weight_and_pointer():
    neg = AdversarialNegatives(num_negatives=6, feat_dim=3)
    neg.init_from_keys(torch.randn(4, 3))
    other = AdversarialNegatives(num_negatives=6, feat_dim=3)
    other.load_state_dict(neg.state_dict())
    assert int(other.num_filled) == 4
    assert torch.equal(other.weight, neg.weight)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_negatives=0), 'Illegal negatives size'),
    (dict(feat_dim=-1), 'Illegal negatives size'),
    (dict(init='zeros'), 'Illegal init'),
])
def test_negatives_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdversarialNegatives(**{'num_negatives': 4, 'feat_dim': 2, **kwargs})


def test_init_from_bad_keys():
    neg = AdversarialNegatives(num_negatives=4, feat_dim=3)
    with pytest.raises(ValueError, match='Expected keys of shape'):
        neg.init_from_keys(torch.randn(2, 5))
    with pytest.raises(ValueError, match='non-finite'):
        neg.init_from_keys(torch.tensor([[0., float('nan'), 1.]]))


# ------------------------------------------------------------------ loss
@pytest.mark.parametrize('batch_negatives', [True, False])
@pytest.mark.parametrize('pos_offset', [0, 3])
@pytest.mark.parametrize('t, mem_t', [(0.12, 0.02), (0.14, 0.03), (1.0, 0.5)])
def test_losses_match_slow_reference(batch_negatives, pos_offset, t, mem_t):
    q = unit(3, 5, seed=1)
    k = unit(7, 5, seed=2)  # global keys; positives at pos_offset + i
    w = raw_negatives(5, 6)
    loss_fn = AdCoLoss(t, mem_t, batch_negatives=batch_negatives)
    w_hat = F.normalize(w, dim=0)
    enc, adv = loss_fn(q, k, w_hat, pos_offset)
    w_hat = w_hat.detach()
    assert enc.item() == pytest.approx(
        slow_loss(q, k, w_hat, t, pos_offset, batch_negatives), rel=1e-9)
    assert adv.item() == pytest.approx(
        slow_loss(q, k, w_hat, mem_t, pos_offset, batch_negatives),
        rel=1e-9)


def test_each_loss_reaches_only_its_player():
    q = unit(4, 5, seed=1).requires_grad_()
    k = unit(4, 5, seed=2)
    w = raw_negatives(5, 8)
    enc, adv = AdCoLoss()(q, k, F.normalize(w, dim=0))
    enc.backward(retain_graph=True)
    assert q.grad is not None and w.grad is None
    q.grad = None
    adv.backward()
    assert w.grad is not None and q.grad is None


@pytest.mark.parametrize('batch_negatives', [True, False])
@pytest.mark.parametrize('pos_offset', [0, 4])
@pytest.mark.parametrize('mem_t', [0.02, 0.3])
def test_autograd_equals_official_closed_form(batch_negatives, pos_offset,
                                              mem_t):
    q = unit(4, 6, seed=3)
    k = unit(8, 6, seed=4)
    w = raw_negatives(6, 10, seed=5)
    loss_fn = AdCoLoss(0.12, mem_t, batch_negatives)
    _, adv = loss_fn(q, k, F.normalize(w, dim=0), pos_offset)
    adv.backward()
    expected = closed_form_grad(q, k, w.detach(), mem_t, pos_offset,
                                batch_negatives)
    assert torch.allclose(w.grad, expected, rtol=1e-9, atol=1e-12)
    # the gradient is orthogonal to its column (normalisation Jacobian)
    assert torch.allclose((w.grad * w.detach()).sum(0),
                          torch.zeros(10, dtype=torch.float64), atol=1e-10)


def test_symmetric_is_mean_of_both_directions():
    q1, q2 = unit(3, 5, seed=1), unit(3, 5, seed=2)
    k1, k2 = unit(6, 5, seed=3), unit(6, 5, seed=4)
    w = raw_negatives(5, 7)
    loss_fn = AdCoLoss(0.2, 0.05)
    enc, adv = loss_fn.symmetric(q1, q2, k1, k2, F.normalize(w, dim=0),
                                 pos_offset=3)
    w_hat = F.normalize(w, dim=0).detach()
    assert enc.item() == pytest.approx(
        0.5 * (slow_loss(q1, k2, w_hat, 0.2, 3) +
               slow_loss(q2, k1, w_hat, 0.2, 3)), rel=1e-9)
    adv.backward()
    expected = 0.5 * (closed_form_grad(q1, k2, w.detach(), 0.05, 3) +
                      closed_form_grad(q2, k1, w.detach(), 0.05, 3))
    assert torch.allclose(w.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('batch_negatives', [True, False])
def test_negatives_prob_is_softmax_mass_on_negatives(batch_negatives):
    q, k, w_hat = unit(3, 5, seed=1), unit(6, 5, seed=2), unit(5, 4, dim=0)
    loss_fn = AdCoLoss(0.12, 0.5, batch_negatives=batch_negatives)
    got = loss_fn.negatives_prob(q, k, w_hat, pos_offset=2)
    rows = []
    for i in range(3):
        pos = [q[i] @ k[j] for j in range(6)] if batch_negatives else [
            q[i] @ k[2 + i]]
        neg = [q[i] @ w_hat[:, j] for j in range(4)]
        e = torch.exp(torch.stack(pos + neg) / 0.5)
        rows.append(e[len(pos):].sum() / e.sum())
    assert got.item() == pytest.approx(torch.stack(rows).mean().item(),
                                       rel=1e-6)


@pytest.mark.parametrize('batch_negatives', [True, False])
def test_negatives_stats_are_cosines_to_negatives_and_positive(
        batch_negatives):
    q, k, w_hat = unit(3, 5, seed=3), unit(6, 5, seed=4), unit(5, 4, dim=0)
    loss_fn = AdCoLoss(0.12, 0.5, batch_negatives=batch_negatives)
    got = loss_fn.negatives_stats(q, k, w_hat, pos_offset=2)
    cos = [[float(q[i] @ w_hat[:, j]) for j in range(4)] for i in range(3)]
    assert got['neg_sim_max'].item() == pytest.approx(
        sum(max(r) for r in cos) / 3, rel=1e-6)
    assert got['neg_sim_mean'].item() == pytest.approx(
        sum(map(sum, cos)) / 12, rel=1e-6)
    assert got['pos_sim'].item() == pytest.approx(
        sum(float(q[i] @ k[2 + i]) for i in range(3)) / 3, rel=1e-6)
    assert got['neg_prob'] == loss_fn.negatives_prob(q, k, w_hat,
                                                     pos_offset=2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(temperature=0), 'Illegal temperature'),
    (dict(mem_temperature=0), r'mem_temperature \(mem_t\)'),
    (dict(mem_temperature=-0.02), r'mem_temperature \(mem_t\)'),
])
def test_loss_bad_temperatures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdCoLoss(**kwargs)


def test_loss_bad_inputs():
    loss_fn = AdCoLoss()
    q, k, w = unit(2, 4), unit(2, 4), unit(4, 3, dim=0)
    with pytest.raises(ValueError, match='Feature dims differ'):
        loss_fn(q, k, w.t())
    with pytest.raises(ValueError, match='Positive keys at rows'):
        loss_fn(q, k, w, pos_offset=1)
    with pytest.raises(ValueError, match='non-finite'):
        loss_fn(q * float('nan'), k, w)


# ----------------------------------------------- the two players, stepped
def make_players(seed=0, d=8, k=32, b=16):
    torch.manual_seed(seed)
    encoder = torch.nn.Linear(12, d, bias=False)
    negatives = AdversarialNegatives(k, d, init='random')
    model = torch.nn.ModuleDict(dict(encoder=encoder, negatives=negatives))
    x = torch.randn(b, 12)
    keys = F.normalize(torch.randn(b, 12) @ encoder.weight.t().detach() +
                       0.5 * torch.randn(b, d), dim=1)
    return model, x, keys


def build_optimizer(model, lr=0.1, neg_lr=3.0):
    """Plain torch SGD, the negatives' group ascending (maximize=True), as
    the configs' paramwise_cfg builds it."""
    return torch.optim.SGD(
        [dict(params=model['encoder'].parameters()),
         dict(params=model['negatives'].parameters(), maximize=True,
              lr=neg_lr, momentum=0.9, weight_decay=1e-4)],
        lr=lr, momentum=0.9, weight_decay=1e-4)


def step(optimizer, loss):
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def both_losses(model, x, keys, loss_fn):
    q = F.normalize(model['encoder'](x), dim=1)
    return loss_fn(q, keys, model['negatives']())


def test_ascent_step_raises_negatives_loss():
    model, x, keys = make_players()
    loss_fn = AdCoLoss(0.12, 0.02)
    optimizer = build_optimizer(model, lr=0.0, neg_lr=0.5)  # negatives only
    enc0, adv0 = both_losses(model, x, keys, loss_fn)
    step(optimizer, enc0 + (adv0 - adv0.detach()))
    with torch.no_grad():
        enc1, adv1 = both_losses(model, x, keys, loss_fn)
    assert adv1 > adv0.detach() + 1e-3  # the negatives got harder
    assert enc1 > enc0.detach()  # ... for the encoder's loss too


def test_encoder_step_lowers_encoder_loss():
    model, x, keys = make_players()
    loss_fn = AdCoLoss(0.12, 0.02)
    optimizer = build_optimizer(model, lr=0.05, neg_lr=0.0)
    optimizer.param_groups[1].update(momentum=0.0, weight_decay=0.0)
    w0 = model['negatives'].weight.detach().clone()  # they hold still
    enc0, adv0 = both_losses(model, x, keys, loss_fn)
    step(optimizer, enc0 + (adv0 - adv0.detach()))
    with torch.no_grad():
        enc1, _ = both_losses(model, x, keys, loss_fn)
    assert torch.equal(model['negatives'].weight, w0)
    assert enc1 < enc0.detach() - 1e-4


def test_three_steps_equal_the_official_update():
    """Our autograd + torch SGD with maximize=True == the official
    hand-written update v <- m v + g + wd W, W <- W - lr v with
    g = -dL/dW."""
    model, x, keys = make_players(k=12)
    loss_fn = AdCoLoss(0.12, 0.02)
    optimizer = build_optimizer(model, lr=0.0)  # the encoder stays fixed
    with torch.no_grad():
        q = F.normalize(model['encoder'](x), dim=1).double()
    w_ref = model['negatives'].weight.detach().double().clone()
    v = torch.zeros_like(w_ref)
    for _ in range(3):
        enc, adv = both_losses(model, x, keys, loss_fn)
        step(optimizer, enc + (adv - adv.detach()))
        g = -closed_form_grad(q, keys.double(), w_ref, 0.02)
        v = 0.9 * v + g + 1e-4 * w_ref
        w_ref = w_ref - 3.0 * v
        assert torch.allclose(model['negatives'].weight.double(), w_ref,
                              rtol=1e-4, atol=1e-5)


def test_negatives_stay_finite_and_unit_at_use():
    model, x, keys = make_players(k=64)
    loss_fn = AdCoLoss(0.12, 0.02)
    optimizer = build_optimizer(model, lr=0.05)
    for i in range(30):
        torch.manual_seed(i)
        xs = x + 0.3 * torch.randn_like(x)
        enc, adv = both_losses(model, xs, keys, loss_fn)
        step(optimizer, enc + (adv - adv.detach()))
    w = model['negatives'].weight
    assert torch.isfinite(w).all()
    assert torch.allclose(model['negatives']().norm(dim=0), torch.ones(64),
                          atol=1e-5)
