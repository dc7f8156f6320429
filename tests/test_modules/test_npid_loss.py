"""NPID maths against slow, obvious reference code."""
import math

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import NPIDLoss, sample_negatives


def unit(*shape):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


def ref_softmax_loss(f, idx, bank, tau):
    total = 0.0
    for b in range(f.shape[0]):
        denom = sum(math.exp(float(bank[j] @ f[b]) / tau)
                    for j in range(bank.shape[0]))
        p = math.exp(float(bank[idx[b]] @ f[b]) / tau) / denom
        total += -math.log(p)
    return total / f.shape[0]


@pytest.mark.parametrize('tau', [0.07, 0.5])
def test_softmax_loss_and_gradient(tau):
    torch.manual_seed(0)
    bank, f = unit(30, 5), unit(4, 5).requires_grad_()
    idx = torch.tensor([0, 7, 7, 29])
    loss = NPIDLoss(mode='softmax', temperature=tau)(f, idx, bank)
    assert loss.item() == pytest.approx(ref_softmax_loss(f.detach(), idx, bank, tau),
                                        rel=1e-9)
    loss.backward()
    # analytic gradient of the mean CE: (sum_j p_j v_j - v_i) / (tau * B)
    with torch.no_grad():
        p = torch.softmax(f @ bank.t() / tau, dim=1)
        expected = (p @ bank - bank[idx]) / (tau * f.shape[0])
    assert torch.allclose(f.grad, expected, atol=1e-10)


def ref_nce_loss(f, idx, neg_idx, bank, tau, z):
    n, m = bank.shape[0], neg_idx.shape[1]
    pn = 1.0 / n
    total = 0.0
    for b in range(f.shape[0]):
        p_pos = math.exp(float(bank[idx[b]] @ f[b]) / tau) / z
        h_pos = p_pos / (p_pos + m * pn)
        s = -math.log(h_pos)
        for j in neg_idx[b].tolist():
            p = math.exp(float(bank[j] @ f[b]) / tau) / z
            s -= math.log(1 - p / (p + m * pn))
        total += s
    return total / f.shape[0]


def test_nce_loss_and_z_once():
    torch.manual_seed(1)
    n, m, tau = 40, 6, 0.1
    bank, f = unit(n, 8), unit(5, 8)
    idx = torch.tensor([1, 2, 3, 39, 0])
    loss_fn = NPIDLoss(mode='nce', num_negatives=m, temperature=tau).double()
    gen_state = torch.get_rng_state()
    loss = loss_fn(f, idx, bank)
    torch.set_rng_state(gen_state)
    neg_idx = sample_negatives(idx, m, n)  # same draws as inside the loss
    # Z = n * mean over noise pairs of exp(v.f / tau), estimated on this batch
    z_ref = n * sum(math.exp(float(bank[j] @ f[b]) / tau)
                    for b in range(5) for j in neg_idx[b].tolist()) / (5 * m)
    assert loss_fn.z.item() == pytest.approx(z_ref, rel=1e-6)
    assert loss.item() == pytest.approx(
        ref_nce_loss(f, idx, neg_idx, bank, tau, z_ref), rel=1e-6)
    # 'once': Z is frozen after the first batch
    z1 = loss_fn.z.item()
    loss_fn(unit(5, 8) * 0.5, idx, bank)
    assert loss_fn.z.item() == z1


def test_z_ema():
    torch.manual_seed(2)
    bank = unit(50, 4)
    loss_fn = NPIDLoss(num_negatives=10, temperature=0.2, z_mode='ema',
                       z_momentum=0.9).double()
    idx = torch.arange(3)
    loss_fn(unit(3, 4), idx, bank)
    z0 = loss_fn.z.item()
    f2 = unit(3, 4)
    state = torch.get_rng_state()
    loss_fn(f2, idx, bank)
    torch.set_rng_state(state)
    neg = sample_negatives(idx, 10, 50)
    zb = 50 * torch.exp((torch.einsum('bd,bmd->bm', f2, bank[neg])) / 0.2).mean()
    assert loss_fn.z.item() == pytest.approx(0.9 * z0 + 0.1 * zb.item(), rel=1e-6)


def test_nce_shared_matches_reference():
    torch.manual_seed(3)
    n, m, tau = 25, 7, 0.1
    bank, f = unit(n, 6), unit(4, 6)
    idx = torch.tensor([3, 9, 10, 24])
    loss_fn = NPIDLoss(num_negatives=m, temperature=tau,
                       shared_negatives=True).double()
    state = torch.get_rng_state()
    loss = loss_fn(f, idx, bank)
    torch.set_rng_state(state)
    neg = sample_negatives(idx, m, n, shared=True).expand(4, m)
    z = loss_fn.z.item()
    assert loss.item() == pytest.approx(ref_nce_loss(f, idx, neg, bank, tau, z),
                                        rel=1e-6)


@pytest.mark.parametrize('shared', [False, True])
def test_negatives_never_equal_positive(shared):
    torch.manual_seed(4)
    n = 6
    idx = torch.tensor([0, 5, 2])
    neg = sample_negatives(idx, 2000, n, shared=shared)
    if shared:
        assert not torch.isin(neg, idx).any()
        assert set(neg.tolist()) == {1, 3, 4}  # every other row reachable
    else:
        assert (neg != idx[:, None]).all()
        for b in range(3):  # uniform over the other n - 1 rows
            counts = torch.bincount(neg[b], minlength=n).float()
            others = counts[torch.arange(n) != idx[b]]
            assert counts[idx[b]] == 0
            assert (others / others.sum() - 1 / (n - 1)).abs().max() < 0.05


@pytest.mark.parametrize('mode', ['nce', 'softmax'])
def test_proximal_term(mode):
    torch.manual_seed(5)
    bank, f = unit(30, 5), unit(4, 5)
    idx = torch.tensor([1, 2, 3, 4])
    plain = NPIDLoss(mode=mode, num_negatives=5, prox_weight=0.0).double()
    prox = NPIDLoss(mode=mode, num_negatives=5, prox_weight=0.7).double()
    state = torch.get_rng_state()
    a = plain(f, idx, bank)
    torch.set_rng_state(state)
    b = prox(f, idx, bank)
    term = sum(float((f[i] - bank[idx[i]]).pow(2).sum()) for i in range(4)) / 4
    assert (b - a).item() == pytest.approx(0.7 * term, rel=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="Illegal mode: 'svm'"):
        NPIDLoss(mode='svm')
    with pytest.raises(ValueError, match='Illegal temperature'):
        NPIDLoss(temperature=0)
    loss_fn = NPIDLoss(num_negatives=3)
    bank = unit(10, 4).float()
    with pytest.raises(ValueError, match='non-finite'):
        loss_fn(torch.full((2, 4), float('nan')), torch.tensor([0, 1]), bank)
    with pytest.raises(ValueError, match='one index per feature'):
        loss_fn(unit(2, 4).float(), torch.tensor([0]), bank)
