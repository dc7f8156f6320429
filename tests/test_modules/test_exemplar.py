"""ExemplarLoss and ExemplarQueue against slow references and edge cases."""
import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import (UNFILLED_LABEL, ExemplarLoss, ExemplarQueue,
                                 exemplar)


def unit(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


def slow_exemplar_loss(q, k, queue_keys, labels, queue_labels, t):
    """One query at a time: negatives = queued keys of another class."""
    losses = []
    for i in range(q.shape[0]):
        pos = math.exp(float(q[i] @ k[i]) / t)
        denom = pos
        for j in range(queue_keys.shape[0]):
            if labels is not None and int(queue_labels[j]) == int(labels[i]):
                continue
            denom += math.exp(float(q[i] @ queue_keys[j]) / t)
        losses.append(-math.log(pos / denom))
    return sum(losses) / len(losses)


@pytest.mark.parametrize('b, n_queue, d, num_classes, t', [
    (1, 5, 3, 2, 0.2), (4, 16, 8, 3, 0.07), (6, 10, 4, 10, 0.5),
    (8, 32, 16, 4, 1.0), (5, 7, 2, 1, 0.2)
])
def test_loss_matches_slow_reference(b, n_queue, d, num_classes, t):
    q, k = unit(b, d, seed=1), unit(b, d, seed=2)
    keys = unit(n_queue, d, seed=3)
    g = torch.Generator().manual_seed(4)
    y = torch.randint(0, num_classes, (b, ), generator=g)
    # -1: unfilled slots
    z = torch.randint(-1, num_classes, (n_queue, ), generator=g)
    loss = ExemplarLoss(temperature=t)(q, k, keys, y, z)
    ref = slow_exemplar_loss(q, k, keys, y, z, t)
    assert loss.item() == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # the filter matters in these grids (except with nothing to filter)
    moco = slow_exemplar_loss(q, k, keys, None, None, t)
    if (y[:, None] == z[None, :]).any():
        assert loss.item() < moco


def moco_infonce(q, k, keys, t):
    """MoCo's InfoNCE as in moco/builder.py: cross-entropy, positive at 0."""
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ keys.t()], 1) / t
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


def test_all_labels_distinct_is_exactly_moco():
    q = unit(8, 16, seed=1, dtype=torch.float32)
    k = unit(8, 16, seed=2, dtype=torch.float32)
    keys = unit(64, 16, seed=3, dtype=torch.float32)
    y = torch.arange(8)  # queries of classes 0-7
    z = torch.arange(8, 72)  # queue of classes 8-71
    loss_fn = ExemplarLoss(temperature=0.2)
    ref = moco_infonce(q, k, keys, 0.2)
    assert torch.equal(loss_fn(q, k, keys, y, z), ref)
    # labels=None is documented as the MoCo fallback
    assert torch.equal(loss_fn(q, k, keys), ref)
    # unfilled slots (-1) never match a real label
    assert torch.equal(
        loss_fn(q, k, keys, y, torch.full((64, ), UNFILLED_LABEL)), ref)


def test_all_negatives_same_class_gives_zero_loss_and_no_nan():
    q = unit(4, 8, seed=1, dtype=torch.float32).requires_grad_()
    k, keys = unit(4, 8, seed=2, dtype=torch.float32), unit(
        12, 8, seed=3, dtype=torch.float32)
    y = torch.tensor([3, 3, 3, 5])
    z = torch.full((12, ), 3)
    per_query = []
    loss_fn = ExemplarLoss(temperature=0.07)
    for i in range(4):
        per_query.append(loss_fn(q[i:i + 1], k[i:i + 1], keys, y[i:i + 1], z))
    # queries of class 3 have no negative left: -log(1) = 0
    assert per_query[0].item() == 0.0 and per_query[2].item() == 0.0
    assert per_query[3].item() > 0  # class 5 keeps all 12 negatives
    loss = loss_fn(q, k, keys, y, z)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(q.grad).all()
    assert loss.item() == pytest.approx(per_query[3].item() / 4, rel=1e-5)
    assert torch.equal(q.grad[:3], torch.zeros(3, 8))
    assert q.grad[3].abs().sum() > 0


def test_same_class_keys_get_no_weight_or_gradient():
    """Moving same-class queued keys changes neither loss nor gradient."""
    q = unit(3, 8, seed=1, dtype=torch.float32)
    k, keys = unit(3, 8, seed=2, dtype=torch.float32), unit(
        10, 8, seed=3, dtype=torch.float32)
    y = torch.tensor([0, 1, 1])
    z = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, -1])
    loss_fn = ExemplarLoss(temperature=0.1)
    for i in range(3):
        keys_v = keys.clone()
        same = z == y[i]
        keys_v[same] = unit(int(same.sum()), 8, seed=10 + i,
                            dtype=torch.float32)
        a = q[i:i + 1].clone().requires_grad_()
        b = q[i:i + 1].clone().requires_grad_()
        la = loss_fn(a, k[i:i + 1], keys, y[i:i + 1], z)
        lb = loss_fn(b, k[i:i + 1], keys_v, y[i:i + 1], z)
        la.backward()
        lb.backward()
        assert la.item() == pytest.approx(lb.item(), rel=1e-6)
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_bfloat16_autocast_is_finite():
    q = unit(4, 8, seed=1, dtype=torch.float32).requires_grad_()
    k, keys = unit(4, 8, seed=2, dtype=torch.float32), unit(
        12, 8, seed=3, dtype=torch.float32)
    y, z = torch.tensor([0, 0, 1, 2]), torch.zeros(12, dtype=torch.long)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = ExemplarLoss(0.2)(q, k, keys, y, z)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(q.grad).all()


# ------------------------------------------------------------------ queue
def tagged_keys(ids, d=6):
    """Unit keys that encode their id, so alignment can be checked."""
    return F.normalize(torch.stack([
        torch.tensor([1.0, float(i)] + [0.0] * (d - 2)) for i in ids]), dim=1)


@pytest.mark.parametrize('queue_len, batch', [(10, 4), (10, 5), (7, 3),
                                              (5, 1), (4, 6), (6, 6)])
def test_queue_fifo_and_label_alignment_after_wrap_around(queue_len, batch):
    queue = ExemplarQueue(queue_len=queue_len, feat_dim=6)
    initial = queue.keys.clone()
    written = []  # every id ever enqueued, in order
    for step in range(5):
        ids = list(range(step * batch, (step + 1) * batch))
        queue.enqueue(tagged_keys(ids), torch.tensor(ids) + 100)
        written += ids
        # slot s holds the last id written to it, one key at a time
        expected = {}
        for n, i in enumerate(written):
            expected[n % queue_len] = i
        assert int(queue.ptr) == len(written) % queue_len
        for s in range(queue_len):
            if s in expected:
                i = expected[s]
                assert int(queue.labels[s]) == i + 100
                assert torch.allclose(queue.keys[s], tagged_keys([i])[0])
            else:
                assert int(queue.labels[s]) == UNFILLED_LABEL
                assert torch.equal(queue.keys[s], initial[s])
        assert queue.num_filled() == min(len(written), queue_len)


def test_queue_starts_with_random_unit_keys_and_state_dict():
    queue = ExemplarQueue(queue_len=32, feat_dim=4)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(32), atol=1e-6)
    assert (queue.labels == UNFILLED_LABEL).all() and int(queue.ptr) == 0
    assert queue.keys.std() > 0.1  # random, not constant
    sd = queue.state_dict()
    assert set(sd) == {'keys', 'labels', 'ptr'}
    queue.enqueue(tagged_keys([1, 2, 3], d=4), torch.tensor([4, 5, 6]))
    other = ExemplarQueue(queue_len=32, feat_dim=4)
    other.load_state_dict(queue.state_dict())
    assert torch.equal(other.keys, queue.keys)
    assert other.labels[:3].tolist() == [4, 5, 6] and int(other.ptr) == 3


def test_enqueue_without_labels_stores_unfilled_label():
    queue = ExemplarQueue(queue_len=4, feat_dim=6)
    queue.enqueue(tagged_keys([0, 1]), torch.tensor([3, 3]))
    queue.enqueue(tagged_keys([2, 3]))
    assert queue.labels.tolist() == [3, 3, -1, -1]


# ------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match='Illegal temperature'):
        ExemplarLoss(temperature=0)
    with pytest.raises(ValueError, match='Illegal queue size'):
        ExemplarQueue(queue_len=0)
    loss_fn = ExemplarLoss()
    q, k, keys = unit(2, 4), unit(2, 4), unit(5, 4)
    z = torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match='labels given without queue_labels'):
        loss_fn(q, k, keys, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'>= 0, got -1'):
        loss_fn(q, k, keys, torch.tensor([0, -1]), z)
    with pytest.raises(ValueError, match='integer tensor'):
        loss_fn(q, k, keys, torch.tensor([0.0, 1.0]), z)
    with pytest.raises(ValueError, match=r'shape \(2, \)'):
        loss_fn(q, k, keys, torch.tensor([0, 1, 2]), z)
    with pytest.raises(ValueError, match=r'queue_labels of shape \(5, \)'):
        loss_fn(q, k, keys, torch.tensor([0, 1]), z[:4])
    with pytest.raises(ValueError, match='Feature dims differ'):
        loss_fn(q, k, unit(5, 3), torch.tensor([0, 1]), z)
    with pytest.raises(ValueError, match='non-finite'):
        loss_fn(q * float('nan'), k, keys)
    queue = ExemplarQueue(queue_len=4, feat_dim=4)
    with pytest.raises(ValueError, match=r'keys of shape \(B, 4\)'):
        queue.enqueue(unit(2, 3))
    with pytest.raises(ValueError, match='unfilled queue slots'):
        queue.enqueue(unit(2, 4), torch.tensor([1, -1]))


def test_docstring_examples():
    result = doctest.testmod(exemplar, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
