"""Label-free signals (alignment, uniformity, RankMe, leave-one-out kNN)
against slow explicit-loop references, known cases and bad input."""
import doctest
import math

import pytest
import torch

from mm_instdisc.modules import (alignment, label_free, loo_knn_accuracy,
                                 rankme, uniformity)


def _unit(z):
    rows = []
    for row in z.tolist():
        n = math.sqrt(sum(v * v for v in row))
        rows.append([v / n for v in row])
    return rows


def ref_alignment(z1, z2, alpha):
    a, b = _unit(z1), _unit(z2)
    total = 0.0
    for x, y in zip(a, b):
        d = math.sqrt(sum((p - q)**2 for p, q in zip(x, y)))
        total += d**alpha
    return total / len(a)


def ref_uniformity(z, t):
    u = _unit(z)
    total, pairs = 0.0, 0
    for i in range(len(u)):
        for j in range(len(u)):
            if i != j:
                sq = sum((p - q)**2 for p, q in zip(u[i], u[j]))
                total += math.exp(-t * sq)
                pairs += 1
    return math.log(total / pairs)


def ref_rankme(z, eps):
    # singular values as square roots of the eigenvalues of the Gram matrix
    x = z.double()
    gram = x.t() @ x if x.shape[0] >= x.shape[1] else x @ x.t()
    s = [math.sqrt(max(v, 0.0)) for v in torch.linalg.eigvalsh(gram).tolist()]
    l1 = sum(s)
    p = [v / l1 + eps for v in s]
    return math.exp(-sum(q * math.log(q) for q in p))


def ref_loo_knn(feats, labels, k, tau):
    u = _unit(feats)
    y = labels.tolist()
    n, correct = len(u), 0
    for i in range(n):
        others = [(sum(a * b for a, b in zip(u[i], u[j])), j)
                  for j in range(n) if j != i]
        others.sort(key=lambda s: -s[0])
        votes = {}
        for s, j in others[:min(k, n - 1)]:
            votes[y[j]] = votes.get(y[j], 0.0) + math.exp(s / tau)
        pred = max(votes, key=votes.get)
        correct += pred == y[i]
    return 100.0 * correct / n


@pytest.mark.parametrize('B,D', [(1, 3), (7, 4), (16, 32)])
@pytest.mark.parametrize('alpha', [1.0, 2.0, 3.5])
def test_alignment_matches_reference(B, D, alpha):
    g = torch.Generator().manual_seed(B * D)
    z1, z2 = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    got = alignment(z1, z2, alpha)
    assert got.dim() == 0
    assert float(got) == pytest.approx(ref_alignment(z1, z2, alpha),
                                       rel=1e-5, abs=1e-6)


@pytest.mark.parametrize('B,D', [(2, 3), (9, 4), (20, 16)])
@pytest.mark.parametrize('t', [0.5, 2.0, 10.0])
def test_uniformity_matches_reference(B, D, t):
    g = torch.Generator().manual_seed(B + D)
    z = torch.randn(B, D, generator=g) * 3  # normalised inside
    assert float(uniformity(z, t)) == pytest.approx(ref_uniformity(z, t),
                                                    rel=1e-5, abs=1e-5)


@pytest.mark.parametrize('N,D', [(5, 3), (3, 5), (40, 8), (8, 8)])
@pytest.mark.parametrize('eps', [0.0, 1e-7, 1e-3])
def test_rankme_matches_reference(N, D, eps):
    g = torch.Generator().manual_seed(N * 10 + D)
    # unequal column scales: singular values far from equal
    z = torch.randn(N, D, generator=g) * torch.linspace(0.1, 2.0, D)
    assert float(rankme(z, eps)) == pytest.approx(ref_rankme(z, eps),
                                                  rel=1e-4)


@pytest.mark.parametrize('N,D,k', [(6, 3, 1), (20, 4, 5), (30, 8, 29),
                                   (12, 5, 100)])
def test_loo_knn_matches_reference(N, D, k):
    g = torch.Generator().manual_seed(N + k)
    feats = torch.randn(N, D, generator=g)
    labels = torch.randint(0, 3, (N, ), generator=g)
    for tau in (0.07, 0.5):
        assert loo_knn_accuracy(feats, labels, k, tau) == pytest.approx(
            ref_loo_knn(feats, labels, k, tau))


def test_identical_views_are_perfectly_aligned():
    z = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    assert float(alignment(z, z)) == pytest.approx(0.0, abs=1e-6)
    # scaling a row does not move it on the sphere
    assert float(alignment(z, 5 * z)) == pytest.approx(0.0, abs=1e-6)
    # antipodal views: distance 2, squared 4
    assert float(alignment(z, -z)) == pytest.approx(4.0, rel=1e-6)


def test_collapsed_embeddings():
    z = torch.randn(1, 16).repeat(64, 1)
    assert float(rankme(z)) == pytest.approx(1.0, abs=1e-3)
    assert float(uniformity(z)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize('D', [4, 16, 64])
def test_orthonormal_embeddings_have_full_rank(D):
    q, _ = torch.linalg.qr(torch.randn(D, D, dtype=torch.float64,
                                       generator=torch.Generator()
                                       .manual_seed(D)))
    assert float(rankme(q)) == pytest.approx(D, rel=1e-4)
    # a rank-r matrix of equal singular values: RankMe r
    assert float(rankme(q[:, :D // 2] @ q[:, :D // 2].t())) == pytest.approx(
        D // 2, rel=1e-3)


def test_uniformity_prefers_spread_out_points():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(200, 32, generator=g)
    clumped = torch.randn(1, 32, generator=g) + 0.1 * torch.randn(
        200, 32, generator=g)
    assert float(uniformity(spread)) < float(uniformity(clumped)) < 0
    # random directions in high dimension: ||z_i - z_j||^2 ~ 2, so ~ -2t
    assert float(uniformity(torch.randn(300, 512, generator=g))) == \
        pytest.approx(-4.0, abs=0.1)


def test_loo_knn_never_counts_the_sample_itself():
    # every sample has a unique label: with itself excluded no neighbour
    # can vote for it, so the accuracy is 0 (100 if self were counted)
    feats = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    assert loo_knn_accuracy(feats, torch.arange(10), k=3) == 0.0
    # duplicated rows: self ties with its twin, which must still vote
    feats = torch.tensor([[1., 0.], [1., 0.], [0., 1.], [0., 1.]])
    assert loo_knn_accuracy(feats, torch.tensor([0, 0, 1, 1]), k=1) == 100.0
    # fully collapsed: ties everywhere, still exactly k votes per sample
    assert loo_knn_accuracy(torch.ones(6, 3), torch.tensor([0] * 5 + [1]),
                            k=5) == pytest.approx(100.0 * 5 / 6)


def test_functions_keep_gradients_and_dtypes():
    z = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    u = uniformity(z)
    a = alignment(z, z.detach() + 0.1)
    assert u.dtype == a.dtype == torch.float64
    (u + a).backward()
    assert torch.isfinite(z.grad).all()
    # collapsed rows: gradients stay finite (no sqrt of a zero distance)
    c = torch.ones(4, 3, requires_grad=True)
    uniformity(c).backward()
    assert torch.isfinite(c.grad).all()


def test_bad_input_is_named():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match='same shape'):
        alignment(z, torch.randn(5, 3))
    with pytest.raises(ValueError, match='Illegal alpha: 0.0'):
        alignment(z, z, alpha=0)
    with pytest.raises(ValueError, match='at least 2 embeddings'):
        uniformity(torch.randn(1, 3))
    with pytest.raises(ValueError, match='Illegal t: -1.0'):
        uniformity(z, t=-1)
    with pytest.raises(ValueError, match='2 dimensions'):
        rankme(torch.randn(3))
    with pytest.raises(ValueError, match='Illegal eps'):
        rankme(z, eps=-1)
    with pytest.raises(ValueError, match='non-finite'):
        rankme(torch.tensor([[1.0, float('nan')]]))
    with pytest.raises(ValueError, match='labels of shape'):
        loo_knn_accuracy(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='non-negative'):
        loo_knn_accuracy(z, torch.tensor([0, 1, -1, 0]))
    with pytest.raises(ValueError, match='Illegal k: 0'):
        loo_knn_accuracy(z, torch.tensor([0, 1, 1, 0]), k=0)
    with pytest.raises(ValueError, match='Illegal temperature'):
        loo_knn_accuracy(z, torch.tensor([0, 1, 1, 0]), temperature=0)
    with pytest.raises(ValueError, match='at least 2 samples'):
        loo_knn_accuracy(torch.randn(1, 3), torch.tensor([0]))


def test_docstring_examples():
    result = doctest.testmod(label_free, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
