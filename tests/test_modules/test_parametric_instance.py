"""Parametric instance softmax (NPID's baseline) against slow, obvious code."""
import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import ParametricInstanceLoss, parametric_instance


def ref_loss(f, idx, w, tau):
    """-log P(idx|v), P(i|v) = exp(w_i.v/T) / sum_j exp(w_j.v/T), row by row
    with a hand-written log-sum-exp; differentiable (torch scalars)."""
    total = 0.0
    for b in range(f.shape[0]):
        scores = [torch.dot(w[j], f[b]) / tau for j in range(w.shape[0])]
        top = max(float(s) for s in scores)
        log_z = top + torch.log(sum(torch.exp(s - top) for s in scores))
        total = total - (scores[int(idx[b])] - log_z)
    return total / f.shape[0]


def make(n, d, tau, seed):
    torch.manual_seed(seed)
    loss_fn = ParametricInstanceLoss(n, d, temperature=tau).double()
    with torch.no_grad():  # spread the rows: a non-trivial softmax
        loss_fn.weight.normal_()
    f = F.normalize(torch.randn(5, d, dtype=torch.float64), dim=1)
    return loss_fn, f


@pytest.mark.parametrize('n, d, tau', [(12, 4, 1.0), (30, 8, 0.1),
                                       (7, 3, 0.05)])
def test_loss_and_gradients_match_reference(n, d, tau):
    loss_fn, f = make(n, d, tau, seed=n)
    idx = torch.tensor([0, n - 1, 3, 3, 1])
    f1 = f.clone().requires_grad_()
    loss = loss_fn(f1, idx)
    loss.backward()

    w2 = loss_fn.weight.detach().clone().requires_grad_()
    f2 = f.clone().requires_grad_()
    expected = ref_loss(f2, idx, w2, tau)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    assert torch.allclose(loss_fn.weight.grad, w2.grad, rtol=1e-9,
                          atol=1e-12)
    assert torch.allclose(f1.grad, f2.grad, rtol=1e-9, atol=1e-12)
    # every class gets a gradient (the full softmax), not just the batch's
    assert (loss_fn.weight.grad.abs().sum(1) > 0).all()


def test_loss_value_by_hand():
    """Two classes, orthogonal unit weights: closed form."""
    loss_fn = ParametricInstanceLoss(2, 2, temperature=0.5).double()
    with torch.no_grad():
        loss_fn.weight.copy_(torch.eye(2))
    f = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # logits (2, 0): -log(e^2 / (e^2 + 1))
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert loss_fn(f, torch.tensor([0])).item() == pytest.approx(expected)
    assert loss_fn(f, torch.tensor([1])).item() == pytest.approx(
        expected + 2)


def test_temperature_divides_logits():
    loss_a, f = make(20, 6, 1.0, seed=3)
    loss_b = ParametricInstanceLoss(20, 6, temperature=0.25).double()
    loss_b.load_state_dict(loss_a.state_dict())
    idx = torch.tensor([1, 2, 3, 19, 0])
    assert torch.allclose(loss_b.logits(f), loss_a.logits(f) * 4)
    assert loss_b(f, idx).item() == pytest.approx(
        F.cross_entropy(loss_a.logits(f) * 4, idx).item(), rel=1e-12)
    # W * 4 at T = 1 is the same classifier as W at T = 0.25
    with torch.no_grad():
        loss_a.weight.mul_(4)
    assert loss_a(f, idx).item() == pytest.approx(loss_b(f, idx).item(),
                                                  rel=1e-12)


def test_initialisation_and_state():
    torch.manual_seed(0)
    loss_fn = ParametricInstanceLoss(5000, 16)
    w = loss_fn.weight
    assert w.shape == (5000, 16) and w.requires_grad
    assert w.std().item() == pytest.approx(0.01, rel=0.05)
    assert abs(w.mean().item()) < 1e-3
    # one parameter, no bias; in the state dict (checkpointed)
    assert [n for n, _ in loss_fn.named_parameters()] == ['weight']
    assert list(loss_fn.state_dict()) == ['weight']
    # near-uniform softmax at the start: loss ~ log N
    f = F.normalize(torch.randn(8, 16), dim=1)
    assert loss_fn(f, torch.arange(8)).item() == pytest.approx(
        math.log(5000), abs=0.01)


def test_bad_input():
    with pytest.raises(ValueError, match='Illegal temperature: 0'):
        ParametricInstanceLoss(10, 4, temperature=0)
    with pytest.raises(ValueError, match='Illegal temperature: -1'):
        ParametricInstanceLoss(10, 4, temperature=-1.0)
    with pytest.raises(ValueError, match='Illegal num_instances: 0'):
        ParametricInstanceLoss(0, 4)
    with pytest.raises(ValueError, match='Illegal feat_dim: 0'):
        ParametricInstanceLoss(10, 0)
    loss_fn = ParametricInstanceLoss(10, 4)
    f = F.normalize(torch.randn(2, 4), dim=1)
    with pytest.raises(ValueError, match=r'max 10\. num_instances must equal '
                       'the training set size'):
        loss_fn(f, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r'min -1,'):
        loss_fn(f, torch.tensor([-1, 3]))
    with pytest.raises(ValueError, match=r'\(B, 4\).*got \(2, 5\)'):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'got \(4,\)'):
        loss_fn(torch.randn(4), torch.tensor([0]))
    with pytest.raises(ValueError, match='one index per feature'):
        loss_fn(f, torch.tensor([0]))
    with pytest.raises(ValueError, match='non-finite'):
        loss_fn(torch.full((2, 4), float('nan')), torch.tensor([0, 1]))


def test_docstring_examples():
    result = doctest.testmod(parametric_instance,
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_return_logits_are_the_logits_of_the_loss():
    torch.manual_seed(0)
    loss_fn = ParametricInstanceLoss(num_instances=7, feat_dim=3)
    f = F.normalize(torch.randn(4, 3), dim=1)
    idx = torch.tensor([0, 6, 2, 2])
    loss, logits = loss_fn(f, idx, return_logits=True)
    assert torch.equal(logits, loss_fn.logits(f))
    assert torch.equal(loss, loss_fn(f, idx))
