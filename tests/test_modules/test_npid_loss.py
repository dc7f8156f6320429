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
    loss_fn = NPIDLoss(mode='nce', num_negatives=m, temperature=tau,
                       z_mode='once').double()
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
    loss_fn = NPIDLoss(num_negatives=m, temperature=tau, z_mode='once',
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


# ----------------------------------------------------------- modes and paths
def ref_sampled_softmax(f, idx, neg_idx, bank, tau):
    total = 0.0
    for b in range(f.shape[0]):
        terms = [float(bank[idx[b]] @ f[b]) / tau] + [
            float(bank[j] @ f[b]) / tau for j in neg_idx[b].tolist()]
        top = max(terms)
        lse = top + math.log(sum(math.exp(t - top) for t in terms))
        total += lse - terms[0]
    return total / f.shape[0]


@pytest.mark.parametrize('shared', [False, True])
def test_sampled_softmax_matches_reference(shared):
    torch.manual_seed(6)
    n, m, tau = 30, 9, 0.07
    bank, f = unit(n, 6), unit(5, 6).requires_grad_()
    idx = torch.tensor([0, 3, 3, 17, 29])
    loss_fn = NPIDLoss(mode='sampled_softmax', num_negatives=m, temperature=tau,
                       shared_negatives=shared).double()
    loss_fn.generator = torch.Generator().manual_seed(11)
    loss = loss_fn(f, idx, bank)
    neg = sample_negatives(idx, m, n, shared,
                           torch.Generator().manual_seed(11))
    if shared:
        neg = neg.expand(5, m)
    assert (neg != idx[:, None]).all()  # the positive is never a negative
    assert loss.item() == pytest.approx(
        ref_sampled_softmax(f.detach(), idx, neg, bank, tau), rel=1e-9)
    loss.backward()
    with torch.no_grad():  # d/df of CE over [pos, negs]
        rows = torch.cat([bank[idx][:, None], bank[neg]], 1)  # (B, m+1, D)
        p = torch.softmax(torch.einsum('bd,bkd->bk', f, rows) / tau, 1)
        expected = (torch.einsum('bk,bkd->bd', p, rows) - bank[idx]) / (tau * 5)
    assert torch.allclose(f.grad, expected, atol=1e-10)


@pytest.mark.parametrize('n, chunk', [(30, 7), (64, 16), (100, 1)])
def test_chunked_softmax_equals_unchunked(n, chunk):
    torch.manual_seed(7)
    bank = unit(n, 8)
    f1 = unit(6, 8).requires_grad_()
    f2 = f1.detach().clone().requires_grad_()
    idx = torch.randint(0, n, (6, ))
    whole = NPIDLoss(mode='softmax', temperature=0.05).double()
    chunked = NPIDLoss(mode='softmax', temperature=0.05, chunk_size=chunk).double()
    a, b = whole(f1, idx, bank), chunked(f2, idx, bank)
    assert b.item() == pytest.approx(a.item(), rel=1e-12)
    assert b.item() == pytest.approx(
        ref_softmax_loss(f1.detach(), idx, bank, 0.05), rel=1e-9)
    (a * 3).backward()
    (b * 3).backward()
    assert torch.allclose(f1.grad, f2.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize('mode', ['nce', 'sampled_softmax'])
def test_dense_gather_path_equals_row_gather(mode):
    torch.manual_seed(8)
    n, m = 50, 12
    bank = unit(n, 8)
    f1 = unit(4, 8).requires_grad_()
    f2 = f1.detach().clone().requires_grad_()
    idx = torch.tensor([0, 1, 49, 20])
    dense = NPIDLoss(mode=mode, num_negatives=m, z_mode='batch').double()
    rows = NPIDLoss(mode=mode, num_negatives=m, z_mode='batch',
                    dense_logits_limit=0).double()
    dense.generator = torch.Generator().manual_seed(3)
    rows.generator = torch.Generator().manual_seed(3)
    a, b = dense(f1, idx, bank), rows(f2, idx, bank)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    a.backward()
    b.backward()
    assert torch.allclose(f1.grad, f2.grad, rtol=1e-10, atol=1e-13)


def test_z_batch_and_warmup():
    torch.manual_seed(9)
    n, m, tau = 60, 10, 0.1
    bank = unit(n, 4)
    idx = torch.arange(5)

    def batch_log_z(f, seed):
        neg = sample_negatives(idx, m, n, generator=torch.Generator().manual_seed(seed))
        logits = torch.einsum('bd,bmd->bm', f, bank[neg]) / tau
        return math.log(n * float(torch.exp(logits).mean()))

    per_batch = NPIDLoss(num_negatives=m, temperature=tau, z_mode='batch').double()
    warm = NPIDLoss(num_negatives=m, temperature=tau, z_mode='once',
                    z_warmup=2).double()
    seen = []
    for step in range(4):
        f = unit(5, 4)
        per_batch.generator = torch.Generator().manual_seed(step)
        warm.generator = torch.Generator().manual_seed(step)
        per_batch(f, idx, bank)
        warm(f, idx, bank)
        ref = batch_log_z(f, step)
        assert per_batch.log_z.item() == pytest.approx(ref, rel=1e-9)
        seen.append(warm.log_z.item())
        if step < 2:  # warm-up: re-estimated on every batch
            assert seen[-1] == pytest.approx(ref, rel=1e-9)
    assert seen[2] == seen[1] == seen[3]  # then frozen
    assert int(warm.z_calls) == 4


def test_old_checkpoint_z_is_converted():
    loss_fn = NPIDLoss()
    loss_fn.load_state_dict({'z': torch.tensor(2.5e4)})
    assert loss_fn.z.item() == pytest.approx(2.5e4, rel=1e-6)
    fresh = NPIDLoss()
    fresh.load_state_dict({'z': torch.tensor(-1.0)})
    assert torch.isnan(fresh.log_z)
    assert set(NPIDLoss().state_dict()) == {'log_z', 'z_calls'}


def test_stats_are_logged_without_sync():
    torch.manual_seed(10)
    bank = unit(40, 4).float()
    loss_fn = NPIDLoss(num_negatives=8, temperature=0.1)
    loss_fn(unit(3, 4).float(), torch.tensor([0, 1, 2]), bank)
    assert set(loss_fn.last_stats) == {'log_z', 'pos_h', 'neg_h'}
    assert 0 < loss_fn.last_stats['neg_h'] < 1


# ----------------------------------------------------------- half precision
NUMERIC_TAUS = [0.01, 0.05, 0.07, 0.2, 1.0]


def ref_loss64(mode, f, idx, bank, tau, neg, per_sample_z=False):
    """Slow float64 reference: explicit log-sum-exp / NCE formulas."""
    f, bank = f.double(), bank.double()
    l_pos = (f * bank[idx]).sum(1) / tau
    if mode == 'softmax':
        logits = f @ bank.t() / tau
        top = logits.max(1, keepdim=True).values
        lse = top.squeeze(1) + torch.log(torch.exp(logits - top).sum(1))
        return (lse - l_pos).mean()
    l_neg = torch.einsum('bd,bmd->bm', f, bank[neg]) / tau
    if mode == 'sampled_softmax':
        allv = torch.cat([l_pos[:, None], l_neg], 1)
        top = allv.max(1, keepdim=True).values
        lse = top.squeeze(1) + torch.log(torch.exp(allv - top).sum(1))
        return (lse - l_pos).mean()
    n, m = bank.shape[0], neg.shape[1]
    # Z is a constant of the loss (eq. 8's estimate is not differentiated)
    if per_sample_z:
        top = l_neg.max(1, keepdim=True).values
        log_z = (math.log(n) + top +
                 torch.log(torch.exp(l_neg - top).mean(1, keepdim=True))).detach()
        l_pos = l_pos[:, None]
    else:
        top = l_neg.max()
        log_z = (math.log(n) + top + torch.log(torch.exp(l_neg - top).mean())).detach()
    shift = log_z + math.log(m / n)
    pos = -torch.log1p(torch.exp(-(l_pos - shift)))
    negs = -torch.log1p(torch.exp(l_neg - shift)).sum(1)
    return -(pos.flatten() + negs).mean()


def rel_err(a, b):
    return float((a.double() - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('tau', NUMERIC_TAUS)
@pytest.mark.parametrize('mode', ['softmax', 'nce', 'sampled_softmax'])
def test_autocast_matches_float64(dtype, tau, mode):
    torch.manual_seed(12)
    n, m = 5000, 512
    bank = F.normalize(torch.randn(n, 32), dim=1)
    idx = torch.randint(0, n, (8, ))
    # features near their rows, as after some training: large positive logits
    f = F.normalize(bank[idx] + 0.5 * torch.randn(8, 32), dim=1).requires_grad_()
    loss_fn = NPIDLoss(mode=mode, num_negatives=m, temperature=tau,
                       z_mode='batch', chunk_size=1024)
    loss_fn.generator = torch.Generator().manual_seed(0)
    with torch.autocast('cpu', dtype=dtype):
        loss = loss_fn(f, idx, bank)
    loss.backward()
    neg = sample_negatives(idx, m, n, generator=torch.Generator().manual_seed(0))
    f64 = f.detach().double().requires_grad_()
    ref = ref_loss64(mode, f64, idx, bank, tau, neg)
    ref.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(loss.item() - ref.item()) <= 1e-3 * abs(ref.item())
    assert torch.isfinite(f.grad).all()
    assert rel_err(f.grad, f64.grad) <= 1e-3


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('mode', ['softmax', 'nce'])
def test_autocast_at_imagenet_scale(dtype, mode):
    """N = 1.28M: Z ~ 1e6-1e7 overflows fp16; the loss stays exact."""
    g = torch.Generator().manual_seed(13)
    n, m, tau = 1_281_167, 4096, 0.07
    bank = F.normalize(torch.randn(n, 16, generator=g), dim=1)
    idx = torch.tensor([0, 5, 1_281_166, 640_000])
    f = F.normalize(bank[idx] + 0.3 * torch.randn(4, 16, generator=g),
                    dim=1).requires_grad_()
    loss_fn = NPIDLoss(mode=mode, num_negatives=m, temperature=tau,
                       z_mode='sample', chunk_size=200_000)
    loss_fn.generator = torch.Generator().manual_seed(1)
    with torch.autocast('cpu', dtype=dtype):
        loss = loss_fn(f, idx, bank)
    loss.backward()
    assert loss_fn.mode != 'nce' or loss_fn.z.item() > 65504  # fp16 max
    neg = sample_negatives(idx, m, n, generator=torch.Generator().manual_seed(1))
    f64 = f.detach().double().requires_grad_()
    ref = ref_loss64(mode, f64, idx, bank, tau, neg, per_sample_z=True)
    ref.backward()
    assert torch.isfinite(loss)
    assert abs(loss.item() - ref.item()) <= 1e-3 * abs(ref.item())
    assert rel_err(f.grad, f64.grad) <= 1e-3


def test_half_module_keeps_log_z_float32():
    loss_fn = NPIDLoss().half()
    assert loss_fn.log_z.dtype == torch.float32


# ----------------------------------------------------------- bad input
def test_bad_numeric_input_names_the_value():
    bank = unit(10, 4).float()
    f, idx = unit(2, 4).float(), torch.tensor([0, 1])
    with pytest.raises(ValueError, match='Illegal temperature: nan'):
        NPIDLoss(temperature=float('nan'))
    with pytest.raises(ValueError, match='Empty batch: NPID features'):
        NPIDLoss(num_negatives=3)(f[:0], idx[:0], bank)
    nan_bank = bank.clone()
    nan_bank[7, 2] = float('nan')
    with pytest.raises(ValueError, match='NPID memory bank contains 1 non-finite'
                       r'.*index \[7, 2\]'):
        NPIDLoss(num_negatives=3)(f, idx, nan_bank)
    for mode in ('nce', 'sampled_softmax'):
        with pytest.raises(ValueError, match='num_negatives=10 >= bank length 10'):
            NPIDLoss(mode=mode, num_negatives=10)(f, idx, bank)
    with pytest.raises(ValueError, match=r'out of range \[0, 10\)'):
        NPIDLoss(mode='softmax')(f, torch.tensor([0, 10]), bank)


def test_device_syncing_checks_are_periodic():
    bank = unit(10, 4).float()
    f, idx = unit(2, 4).float(), torch.tensor([0, 1])
    nan_bank = bank.clone()
    nan_bank[3] = float('nan')
    loss_fn = NPIDLoss(mode='softmax', check_interval=3)
    loss_fn(f, idx, bank)          # call 1: checked, fine
    loss_fn(f, idx, nan_bank)      # call 2: not checked (no device sync)
    loss_fn(f, idx, nan_bank)      # call 3: not checked
    with pytest.raises(ValueError, match='NPID memory bank'):
        loss_fn(f, idx, nan_bank)  # call 4: checked


def test_z_per_sample_is_eq8():
    torch.manual_seed(14)
    n, m, tau = 40, 6, 0.1
    bank, f = unit(n, 8), unit(3, 8)
    idx = torch.tensor([4, 0, 39])
    loss_fn = NPIDLoss(num_negatives=m, temperature=tau, z_mode='sample').double()
    loss_fn.generator = torch.Generator().manual_seed(5)
    loss = loss_fn(f, idx, bank)
    neg = sample_negatives(idx, m, n, generator=torch.Generator().manual_seed(5))
    total = 0.0
    for b in range(3):  # Z_i = N/m sum_k exp(v_k.f_i/tau), one per sample
        z_b = n / m * sum(math.exp(float(bank[j] @ f[b]) / tau)
                          for j in neg[b].tolist())
        total += ref_nce_loss(f[b:b + 1], idx[b:b + 1], neg[b:b + 1], bank,
                              tau, z_b)
    assert loss.item() == pytest.approx(total / 3, rel=1e-9)
