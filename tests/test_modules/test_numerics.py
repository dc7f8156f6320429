"""Float32 numerics under fp16 / bf16 autocast.

Every loss computes its logits, its divisions by the temperature and its
log-sum-exp / cross-entropy in float32 (``_checks.float32_math``). Here each
loss runs under CPU autocast on float32 inputs and is compared with a slow,
row-by-row float64 reference written out below (never the module itself in
float64): values and gradients must be finite and within 1e-3 relative.

Bad input (NaN, empty batches, bad temperatures) is tested in
tests/test_faults/test_bad_input.py.
"""
import pytest
import torch

from mm_instdisc.modules import (AdCoLoss, AdversarialNegatives, ExemplarLoss,
                                 ParametricInstanceLoss, SplitMaskLoss)
from mm_instdisc.modules.splitmask import info_nce
from tests.helpers import unit_f32

DTYPES = [torch.float16, torch.bfloat16]
TEMPERATURES = [0.01, 0.05, 0.07, 0.2, 1.0]
TOL = 1e-3
TINY = torch.finfo(torch.float64).tiny
NAN = float('nan')


# ---------------------------------------------------------------- helpers
def leaf64(x):
    """The float64 copy of a float32 tensor, a new autograd leaf."""
    return x.detach().double().requires_grad_()


def rel_err(a, b):
    """|a - b| / max(|b|, tiny) of two scalars."""
    a, b = float(a), float(b)
    return abs(a - b) / max(abs(b), TINY)


def grad_rel_err(a, b):
    """||a - b|| / max(||b||, tiny) of two gradients."""
    a, b = a.double(), b.double()
    return float((a - b).norm()) / max(float(b.norm()), TINY)


def assert_value_close(got, ref, what):
    assert got.dtype == torch.float32, f'{what}: dtype {got.dtype}'
    assert torch.isfinite(got).all(), f'{what} is not finite: {got}'
    err = rel_err(got, ref)
    assert err <= TOL, f'{what}: {float(got)} vs {float(ref)} (rel {err:.2e})'


def assert_grad_close(got, ref, what):
    assert got is not None, f'{what}: no gradient'
    assert torch.isfinite(got).all(), f'{what} is not finite'
    err = grad_rel_err(got, ref)
    assert err <= TOL, f'{what}: relative error {err:.2e}'


def ref_row_loss(row, target):
    """-log softmax(row)[target] of one row of tempered float64 logits."""
    return torch.logsumexp(row, dim=0) - row[target]


# ----------------------------------------------------- float64 references
def ref_adco(q, k, w, t, pos_offset, batch_negatives):
    """AdCo's cross-entropy row by row: the positive (and, with batch
    negatives, every key) then the normalised columns of w, all over t."""
    w_hat = w / w.norm(dim=0, keepdim=True)
    losses = []
    for i in range(q.shape[0]):
        if batch_negatives:
            keys = torch.stack([q[i] @ k[m] for m in range(k.shape[0])])
            target = pos_offset + i
        else:
            keys = (q[i] @ k[pos_offset + i]).reshape(1)
            target = 0
        negs = torch.stack([q[i] @ w_hat[:, j] for j in range(w.shape[1])])
        losses.append(ref_row_loss(torch.cat([keys, negs]) / t, target))
    return torch.stack(losses).mean()


def ref_exemplar(q, k, queue_keys, labels, queue_labels, t):
    """Row by row: the positive, then the queued keys of another class."""
    losses = []
    for i in range(q.shape[0]):
        row = [q[i] @ k[i]]
        row += [q[i] @ queue_keys[j] for j in range(queue_keys.shape[0])
                if int(queue_labels[j]) != int(labels[i])]
        losses.append(ref_row_loss(torch.stack(row) / t, 0))
    return torch.stack(losses).mean()


def ref_info_nce(q, k, t, pos_offset):
    """Row by row: every row of k, the positive at pos_offset + i."""
    losses = []
    for i in range(q.shape[0]):
        row = torch.stack([q[i] @ k[m] for m in range(k.shape[0])])
        losses.append(ref_row_loss(row / t, pos_offset + i))
    return torch.stack(losses).mean()


def ref_parametric(f, idx, w, t):
    """Row by row: one class per instance, scores w_j . f / t."""
    losses = []
    for i in range(f.shape[0]):
        row = torch.stack([w[j] @ f[i] for j in range(w.shape[0])])
        losses.append(ref_row_loss(row / t, int(idx[i])))
    return torch.stack(losses).mean()


def ref_splitmask(dec_a, dec_b, ids_a, ids_b, tokens, w, b, p_w, p_b, t):
    """MIM (each branch predicts the other set's tokens) + symmetric InfoNCE
    of the pooled, projected, normalised descriptors; weights 1."""
    mims = []
    for dec, ids in ((dec_a, ids_b), (dec_b, ids_a)):
        losses = []
        for n in range(dec.shape[0]):
            for j in ids[n].tolist():
                row = w @ dec[n, j] + b  # (V, )
                losses.append(ref_row_loss(row, int(tokens[n, j])))
        mims.append(torch.stack(losses).mean())
    mim = (mims[0] + mims[1]) / 2

    def descriptor(dec):
        rows = []
        for n in range(dec.shape[0]):
            z = p_w @ dec[n].mean(0) + p_b
            rows.append(z / z.norm())
        return torch.stack(rows)

    z_a, z_b = descriptor(dec_a), descriptor(dec_b)
    nce = 0.5 * (ref_info_nce(z_a, z_b, t, 0) + ref_info_nce(z_b, z_a, t, 0))
    return mim + nce, mim, nce


# --------------------------------------- autocast vs the float64 reference
def adco_inputs(b=6, m=10, d=16, k=40, pos_offset=3):
    q = unit_f32(b, d, seed=1).requires_grad_()
    keys = unit_f32(m, d, seed=2)
    negatives = AdversarialNegatives(k, d, init='random')
    with torch.no_grad():  # raw columns of very different norms
        negatives.weight.copy_(
            unit_f32(d, k, seed=3, dim=0) * torch.linspace(0.3, 3.0, k))
    return q, keys, negatives, pos_offset


@pytest.mark.parametrize('batch_negatives', [True, False])
@pytest.mark.parametrize('tau', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_adco_encoder_loss_under_autocast(dtype, tau, batch_negatives):
    q, k, negatives, offset = adco_inputs()
    loss_fn = AdCoLoss(temperature=tau, mem_temperature=0.02,
                       batch_negatives=batch_negatives)
    with torch.autocast('cpu', dtype=dtype):
        enc, _ = loss_fn(q, k, negatives(), offset)
    grad_q, = torch.autograd.grad(enc, q)

    q64, w64 = leaf64(q), negatives.weight.detach().double()
    ref = ref_adco(q64, k.double(), w64, tau, offset, batch_negatives)
    ref_grad_q, = torch.autograd.grad(ref, q64)
    assert_value_close(enc, ref, 'AdCo encoder loss')
    assert_grad_close(grad_q, ref_grad_q, 'd encoder loss / d q')


@pytest.mark.parametrize('batch_negatives', [True, False])
@pytest.mark.parametrize('mem_t', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_adco_negatives_loss_under_autocast(dtype, mem_t, batch_negatives):
    q, k, negatives, offset = adco_inputs()
    loss_fn = AdCoLoss(temperature=0.12, mem_temperature=mem_t,
                       batch_negatives=batch_negatives)
    with torch.autocast('cpu', dtype=dtype):
        _, adv = loss_fn(q, k, negatives(), offset)
    grad_w, = torch.autograd.grad(adv, negatives.weight)

    w64 = leaf64(negatives.weight)
    ref = ref_adco(q.detach().double(), k.double(), w64, mem_t, offset,
                   batch_negatives)
    ref_grad_w, = torch.autograd.grad(ref, w64)
    assert_value_close(adv, ref, 'AdCo negatives loss')
    assert_grad_close(grad_w, ref_grad_w, 'd negatives loss / d weight')


@pytest.mark.parametrize('tau', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_exemplar_loss_under_autocast(dtype, tau):
    b, n_queue, d = 6, 48, 16
    q = unit_f32(b, d, seed=1).requires_grad_()
    k, queue_keys = unit_f32(b, d, seed=2), unit_f32(n_queue, d, seed=3)
    g = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 4, (b, ), generator=g)
    queue_labels = torch.randint(-1, 4, (n_queue, ), generator=g)
    assert (labels[:, None] == queue_labels[None, :]).any()  # masks some
    with torch.autocast('cpu', dtype=dtype):
        loss = ExemplarLoss(temperature=tau)(q, k, queue_keys, labels,
                                             queue_labels)
    grad_q, = torch.autograd.grad(loss, q)

    q64 = leaf64(q)
    ref = ref_exemplar(q64, k.double(), queue_keys.double(), labels,
                       queue_labels, tau)
    ref_grad_q, = torch.autograd.grad(ref, q64)
    assert_value_close(loss, ref, 'Exemplar loss')
    assert_grad_close(grad_q, ref_grad_q, 'd Exemplar loss / d q')


@pytest.mark.parametrize('tau', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_splitmask_info_nce_under_autocast(dtype, tau):
    q = unit_f32(5, 16, seed=1).requires_grad_()
    k = unit_f32(9, 16, seed=2).requires_grad_()  # the other ranks' rows too
    with torch.autocast('cpu', dtype=dtype):
        loss = info_nce(q, k, tau, pos_offset=3)
    grad_q, grad_k = torch.autograd.grad(loss, (q, k))

    q64, k64 = leaf64(q), leaf64(k)
    ref = ref_info_nce(q64, k64, tau, 3)
    ref_grad_q, ref_grad_k = torch.autograd.grad(ref, (q64, k64))
    assert_value_close(loss, ref, 'InfoNCE')
    assert_grad_close(grad_q, ref_grad_q, 'd InfoNCE / d q')
    assert_grad_close(grad_k, ref_grad_k, 'd InfoNCE / d k')


@pytest.mark.parametrize('tau', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_splitmask_loss_under_autocast(dtype, tau):
    torch.manual_seed(0)
    b, length, c, vocab, proj = 4, 8, 12, 64, 8
    loss_fn = SplitMaskLoss(c, vocab_size=vocab, proj_dim=proj,
                            temperature=tau)
    g = torch.Generator().manual_seed(1)
    ids_a, ids_b = torch.rand(b, length, generator=g).argsort(1).split(
        [3, length - 3], dim=1)
    dec_a = torch.randn(b, length, c, generator=g).requires_grad_()
    dec_b = torch.randn(b, length, c, generator=g).requires_grad_()
    tokens = torch.randint(vocab, (b, length), generator=g)
    params = (loss_fn.predictor.weight, loss_fn.predictor.bias,
              loss_fn.projector.weight, loss_fn.projector.bias)
    with torch.autocast('cpu', dtype=dtype):
        out = loss_fn(dec_a, dec_b, ids_a, ids_b, tokens)
    grads = torch.autograd.grad(out['loss'], (dec_a, dec_b) + params)

    leaves = [leaf64(x) for x in (dec_a, dec_b) + params]
    ref, ref_mim, ref_nce = ref_splitmask(leaves[0], leaves[1], ids_a, ids_b,
                                          tokens, *leaves[2:], tau)
    ref_grads = torch.autograd.grad(ref, leaves)
    assert_value_close(out['loss'], ref, 'SplitMask loss')
    assert_value_close(out['mim'], ref_mim, 'SplitMask mim')
    assert_value_close(out['nce'], ref_nce, 'SplitMask nce')
    names = ['dec_a', 'dec_b', 'predictor.weight', 'predictor.bias',
             'projector.weight', 'projector.bias']
    for name, got, want in zip(names, grads, ref_grads):
        assert_grad_close(got, want, f'd SplitMask loss / d {name}')


@pytest.mark.parametrize('tau', TEMPERATURES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_parametric_instance_loss_under_autocast(dtype, tau):
    n, d = 40, 16
    loss_fn = ParametricInstanceLoss(n, d, temperature=tau)
    with torch.no_grad():  # unit class vectors: logits in [-1/T, 1/T]
        loss_fn.weight.copy_(unit_f32(n, d, seed=1))
    f = unit_f32(6, d, seed=2).requires_grad_()
    idx = torch.tensor([0, 5, 39, 5, 17, 2])
    with torch.autocast('cpu', dtype=dtype):
        loss = loss_fn(f, idx)
    grad_f, grad_w = torch.autograd.grad(loss, (f, loss_fn.weight))

    f64, w64 = leaf64(f), leaf64(loss_fn.weight)
    ref = ref_parametric(f64, idx, w64, tau)
    ref_grad_f, ref_grad_w = torch.autograd.grad(ref, (f64, w64))
    assert_value_close(loss, ref, 'Parametric instance loss')
    assert_grad_close(grad_f, ref_grad_f, 'd loss / d feats')
    assert_grad_close(grad_w, ref_grad_w, 'd loss / d weight')


@pytest.mark.parametrize('dtype', DTYPES)
def test_public_logits_are_float32_under_autocast(dtype):
    q, k, negatives, _ = adco_inputs()
    with torch.autocast('cpu', dtype=dtype):
        adco_logits, _ = AdCoLoss().logits(q, k, negatives())
        exemplar_logits = ExemplarLoss().logits(q, k[:6], k)
        loss_fn = ParametricInstanceLoss(10, 16)
        parametric_logits = loss_fn.logits(q)
        prob = AdCoLoss().negatives_prob(q, k, negatives())
    for logits in (adco_logits, exemplar_logits, parametric_logits, prob):
        assert logits.dtype == torch.float32


@pytest.mark.parametrize('dtype', DTYPES)
def test_half_precision_inputs_and_modules(dtype):
    """Half features (an autocast encoder's output) and modules converted
    to half as a whole: float32 losses, gradients back in half."""
    q = unit_f32(4, 16, seed=1).to(dtype).requires_grad_()
    k = unit_f32(4, 16, seed=2).to(dtype)
    negatives = AdversarialNegatives(32, 16, init='random').to(dtype)
    enc, adv = AdCoLoss(0.12, 0.02)(q, k, negatives())
    (enc + adv).backward()
    assert enc.dtype == adv.dtype == torch.float32
    assert q.grad.dtype == dtype and negatives.weight.grad.dtype == dtype
    assert torch.isfinite(q.grad).all()
    assert torch.isfinite(negatives.weight.grad).all()

    loss_fn = ParametricInstanceLoss(10, 16, temperature=0.05).to(dtype)
    loss = loss_fn(q, torch.arange(4))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss_fn.weight.grad.dtype == dtype

    fn = SplitMaskLoss(8, vocab_size=16, proj_dim=4, temperature=0.05).to(
        dtype)
    ids = torch.arange(6).reshape(1, 6).repeat(2, 1)
    dec = torch.randn(2, 6, 8, dtype=dtype, requires_grad=True)
    out = fn(dec, dec.flip(0), ids[:, :3], ids[:, 3:],
             torch.randint(16, (2, 6)))
    out['loss'].backward()
    assert out['loss'].dtype == torch.float32
    assert torch.isfinite(out['loss']) and torch.isfinite(dec.grad).all()
    assert fn.predictor.weight.grad.dtype == dtype
