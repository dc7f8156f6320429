import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import knn_topk, topk_accuracy, weighted_knn


def ref_knn_scores(query, ref, labels, k, tau, num_classes):
    q = F.normalize(query, dim=1)
    r = F.normalize(ref, dim=1)
    out = torch.zeros(query.shape[0], num_classes, dtype=torch.float64)
    for i in range(query.shape[0]):
        sims = [(float(q[i] @ r[j]), j) for j in range(ref.shape[0])]
        sims.sort(key=lambda t: -t[0])
        for s, j in sims[:k]:
            out[i, labels[j]] += torch.exp(torch.tensor(s / tau, dtype=torch.float64))
    return out


@pytest.mark.parametrize('k,tau', [(1, 0.07), (5, 0.07), (20, 0.5)])
@pytest.mark.parametrize('chunks', [(1024, 65536), (3, 7)])
def test_weighted_knn_against_reference(k, tau, chunks):
    torch.manual_seed(0)
    query, ref = torch.randn(13, 6), torch.randn(50, 6)
    labels = torch.randint(0, 4, (50, ))
    scores = weighted_knn(query, ref, labels, num_classes=4, ks=(k, ),
                          temperature=tau, query_chunk=chunks[0],
                          ref_chunk=chunks[1])[k]
    expected = ref_knn_scores(query, ref, labels, k, tau, 4)
    assert torch.allclose(scores.double(), expected, rtol=1e-4)


def test_topk_chunked_equals_full():
    torch.manual_seed(1)
    q, r = torch.randn(20, 4), torch.randn(100, 4)
    s1, i1 = knn_topk(q, r, 10)
    s2, i2 = knn_topk(q, r, 10, query_chunk=6, ref_chunk=9)
    assert torch.allclose(s1, s2) and torch.equal(i1, i2)


def test_accuracy():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3]])
    acc = topk_accuracy(scores, torch.tensor([1, 2]), topk=(1, 2))
    assert acc == {1: 50.0, 2: 100.0}


def test_bad_input():
    with pytest.raises(ValueError, match='labels'):
        weighted_knn(torch.randn(2, 3), torch.randn(5, 3), torch.zeros(4))
    with pytest.raises(ValueError, match='Illegal temperature'):
        weighted_knn(torch.randn(2, 3), torch.randn(5, 3), torch.zeros(5),
                     temperature=0)
