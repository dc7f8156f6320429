"""The read-out (mm_instdisc.modules.feature_readout): linear_probe on
synthetic features (separable, random, deterministic) and readout's kNN
against a slow per-sample loop and the benchmarks' former read-out."""
import math

import pytest
import torch

from mm_instdisc.modules import knn_evaluate, linear_probe, readout


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


def slow_knn_top1(train_x, train_y, test_x, test_y, k, tau=0.07):
    """Weighted kNN top-1 (%), one test sample at a time: cosine similarity
    to every training sample, the k most similar vote exp(s / tau) for
    their class, the class with the largest vote wins."""
    hits = 0
    for i in range(len(test_x)):
        q = test_x[i] / test_x[i].norm()
        sims = []
        for j in range(len(train_x)):
            r = train_x[j] / train_x[j].norm()
            sims.append((float(q @ r), int(train_y[j])))
        sims.sort(key=lambda t: -t[0])
        votes = {}
        for s, c in sims[:k]:
            votes[c] = votes.get(c, 0.0) + math.exp(s / tau)
        best = max(votes, key=votes.get)
        hits += int(best == int(test_y[i]))
    return 100.0 * hits / len(test_x)


def noisy_clusters(seed):
    """Five overlapping Gaussian clusters in 16-d (kNN top-1 ~60%)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, 16, generator=g) * 0.45
    y_tr = torch.randint(0, 5, (300, ), generator=g)
    y_te = torch.randint(0, 5, (120, ), generator=g)
    x_tr = centres[y_tr] + torch.randn(300, 16, generator=g)
    x_te = centres[y_te] + torch.randn(120, 16, generator=g)
    return x_tr, y_tr, x_te, y_te


@pytest.mark.parametrize('seed', [0, 1])
def test_readout_knn_matches_a_per_sample_loop(seed):
    x_tr, y_tr, x_te, y_te = noisy_clusters(seed)
    x_te, y_te = x_te[:40], y_te[:40]
    res = readout(x_tr, y_tr, x_te, y_te, ks=(1, 20, 200), probe=False)
    assert sorted(res) == ['knn_k1', 'knn_k20', 'knn_k200']
    for k in (1, 20, 200):
        assert res[f'knn_k{k}'] == pytest.approx(
            slow_knn_top1(x_tr, y_tr, x_te, y_te, k), abs=1e-4), k


# The benchmarks' read-out before it moved here
# (benchmarks.lib.runs.knn_and_probe(..., num_classes=5), run on
# noisy_clusters(seed)): knn_k20, knn_k200, linear, linear_train.
FORMER = {0: (60.83333492279053, 60.83333492279053, 71.66666388511658,
              80.33333420753479),
          1: (60.00000238418579, 61.666667461395264, 64.16666507720947,
              71.66666388511658)}


@pytest.mark.parametrize('seed', [0, 1])
def test_readout_gives_the_former_benchmark_numbers(seed):
    x_tr, y_tr, x_te, y_te = noisy_clusters(seed)
    res = readout(x_tr, y_tr, x_te, y_te, num_classes=5)
    got = (res['knn_k20'], res['knn_k200'], res['linear'],
           res['linear_train'])
    assert got == pytest.approx(FORMER[seed], abs=1e-4)
    probe = linear_probe(x_tr, y_tr, x_te, y_te, num_classes=5)
    assert res['linear'] == probe['top1']
    knn = knn_evaluate(x_tr, y_tr, x_te, y_te, ks=(20, 200))
    assert res['knn_k20'] == knn[20][1] and res['knn_k200'] == knn[200][1]


def test_readout_defaults_and_options():
    x_tr, y_tr, x_te, y_te = noisy_clusters(0)
    res = readout(x_tr, y_tr, x_te, y_te)
    assert sorted(res) == ['knn_k20', 'knn_k200', 'linear', 'linear_train']
    # more classes than the labels hold add only empty kNN columns: the
    # same kNN accuracy
    wide = readout(x_tr, y_tr, x_te, y_te, num_classes=9)
    assert wide['knn_k20'] == res['knn_k20']
    hot = readout(x_tr, y_tr, x_te, y_te, ks=(20, ), probe=False,
                  temperature=1e3)
    # tau -> inf: the vote is a plain majority of the 20 neighbours
    assert hot['knn_k20'] == pytest.approx(
        slow_knn_top1(x_tr, y_tr, x_te, y_te, 20, tau=1e3), abs=1e-4)


def test_readout_bad_input_is_a_clear_error():
    x_tr, y_tr, x_te, y_te = noisy_clusters(0)
    with pytest.raises(ValueError, match='Illegal ks'):
        readout(x_tr, y_tr, x_te, y_te, ks=(0, ), probe=False)
    with pytest.raises(ValueError, match='Illegal temperature'):
        readout(x_tr, y_tr, x_te, y_te, temperature=0.0)
    with pytest.raises(ValueError, match='Query dim'):
        readout(x_tr, y_tr, x_te[:, :4], y_te)
    with pytest.raises(ValueError, match='Illegal epochs'):
        readout(x_tr, y_tr, x_te, y_te, probe_epochs=0)
