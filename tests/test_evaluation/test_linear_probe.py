"""linear_probe on synthetic features: separable, random, deterministic."""
import pytest
import torch

from mm_instdisc.evaluation import linear_probe


def clusters(n_per_class=40, num_classes=4, dim=16, spread=0.3, seed=0,
             shift=0.0):
    """Gaussian clusters around random centres (linearly separable)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=torch.Generator()
                          .manual_seed(123)) * 3 + shift
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=g)
    return x, y


@pytest.mark.parametrize('optimizer', ['lbfgs', 'sgd'])
def test_separable_features_are_classified(optimizer):
    x_tr, y_tr = clusters(seed=0)
    x_te, y_te = clusters(seed=1)
    res = linear_probe(x_tr, y_tr, x_te, y_te, optimizer=optimizer,
                       epochs=10)
    assert res['top1'] == 100.0 and res['train_top1'] == 100.0
    assert res['train_loss'] < 0.3


def test_needs_a_linear_direction_not_a_lookup():
    """XOR-like labels: no linear classifier beats ~75%; random test labels
    give chance level. (The probe cannot cheat.)"""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    res = linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert res['top1'] < 75
    x_tr, y_tr = clusters(seed=0)
    x_te, _ = clusters(seed=1)
    y_rand = torch.randint(0, 4, (len(x_te), ), generator=g)
    assert linear_probe(x_tr, y_tr, x_te, y_rand)['top1'] < 45


@pytest.mark.parametrize('optimizer', ['lbfgs', 'sgd'])
def test_deterministic_by_seed(optimizer):
    x_tr, y_tr = clusters(spread=3.0, seed=0)  # overlapping: not trivial
    x_te, y_te = clusters(spread=3.0, seed=1)
    a = linear_probe(x_tr, y_tr, x_te, y_te, optimizer=optimizer, seed=3)
    b = linear_probe(x_tr, y_tr, x_te, y_te, optimizer=optimizer, seed=3)
    assert a == b
    assert 40 < a['top1'] < 100


def test_standardisation_makes_scale_irrelevant():
    x_tr, y_tr = clusters(spread=2.0, seed=0)
    x_te, y_te = clusters(spread=2.0, seed=1)
    a = linear_probe(x_tr, y_tr, x_te, y_te)
    b = linear_probe(1e3 * x_tr + 5, y_tr, 1e3 * x_te + 5, y_te)
    assert a['top1'] == pytest.approx(b['top1'], abs=1.0)


def test_bad_input_is_a_clear_error():
    x, y = clusters()
    with pytest.raises(ValueError, match='Illegal optimizer'):
        linear_probe(x, y, x, y, optimizer='adam')
    with pytest.raises(ValueError, match='feature dim'):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match='test labels of shape'):
        linear_probe(x, y, x, y[:5])
    with pytest.raises(ValueError, match='integer class indices'):
        linear_probe(x, y.float(), x, y)
    with pytest.raises(ValueError, match='>= 0, got -1'):
        linear_probe(x, y - 1, x, y)
    with pytest.raises(ValueError, match='NaN'):
        linear_probe(x * float('nan'), y, x, y)
    with pytest.raises(ValueError, match='Illegal epochs'):
        linear_probe(x, y, x, y, epochs=0)
