"""ShardedMemoryBank: rows split over ranks, equal to one bank on one device.

The 2- and 4-process tests (gloo, CPU) compare per-sample losses, gradients,
the bank after updates and kNN neighbours with the unsharded computation
written out here (full cross-entropy over the whole bank, MemoryBank,
knn_topk), in float32 to 1e-6 (gradients: 1e-6 of their 1/tau scale)."""
import os

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import (MemoryBank, ShardedMemoryBank, knn_topk,
                                 sample_negatives, shard_bounds)
from mm_instdisc.utils.dist import shutdown_distributed
from tests.helpers import spawn_gloo

N, D, B, TAU, M = 50, 8, 6, 0.1, 20


def test_shard_bounds_cover_the_bank_once():
    for n, w in [(50, 4), (10, 3), (3, 4), (7, 1)]:
        rows = []
        for r in range(w):
            s, e = shard_bounds(n, w, r)
            rows += list(range(s, e))
        assert rows == list(range(n)), (n, w)
    with pytest.raises(ValueError, match='Illegal shard'):
        shard_bounds(10, 2, 2)


def test_random_rows_do_not_depend_on_the_sharding():
    ShardedMemoryBank.SEED_BLOCK, old = 16, ShardedMemoryBank.SEED_BLOCK
    try:
        whole = ShardedMemoryBank(N, D, seed=3, rank=0, world_size=1).bank
        parts = [ShardedMemoryBank(N, D, seed=3, rank=r, world_size=3).bank
                 for r in range(3)]
    finally:
        ShardedMemoryBank.SEED_BLOCK = old
    assert torch.equal(torch.cat(parts), whole)
    assert torch.allclose(whole.norm(dim=1), torch.ones(N))


def test_checkpoint_of_another_sharding_is_refused():
    a = ShardedMemoryBank(N, D, rank=0, world_size=2)
    b = ShardedMemoryBank(N, D, rank=0, world_size=4)
    with pytest.raises(RuntimeError, match=r'rows \[0, 25\).*2 ranks.*'
                       r'expects rows \[0, 13\)'):
        b.load_state_dict(a.state_dict())
    c = ShardedMemoryBank(N, D, rank=0, world_size=2)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.bank, a.bank)


def test_half_precision_storage_updates_in_float32():
    bank = ShardedMemoryBank(N, D, dtype='bfloat16')
    assert bank.bank.dtype == torch.bfloat16
    f = torch.randn(4, D)
    bank.update(torch.tensor([1, 2, 3, 4]), f)
    assert torch.allclose(bank.bank.float().norm(dim=1), torch.ones(N),
                          atol=1e-2)
    with pytest.raises(ValueError, match="Illegal bank dtype: 'int8'"):
        ShardedMemoryBank(N, D, dtype='int8')


def _problem():
    g = torch.Generator().manual_seed(0)
    full = F.normalize(torch.randn(N, D, generator=g), dim=1)
    return full


def _batch(rank):
    g = torch.Generator().manual_seed(100 + rank)
    feats = F.normalize(torch.randn(B, D, generator=g), dim=1)
    idx = torch.arange(rank * B, (rank + 1) * B) * 2 % N  # distinct
    return feats, idx


def _row_cases(world):
    """(name, global row indices for the gathered batch, dense_limit) of
    sharded_row_logits: per-sample sets through the dense product and
    through gathered rows, and one set shared by the batch."""
    g = torch.Generator().manual_seed(11)
    per_sample = torch.randint(0, N, (world * B, M), generator=g)
    shared = torch.randint(0, N, (M, ), generator=g)
    return [('dense', per_sample, 2**25), ('gathered', per_sample, 0),
            ('shared', shared, 2**25)]


def _row_weights(world):
    """Upstream gradient of the (B_all, m) logits."""
    return torch.randn(world * B, M, generator=torch.Generator().manual_seed(12))


def _worker(rank, world, port, out):
    import torch.distributed as dist

    from mm_instdisc.modules import (sharded_knn_topk, sharded_row_logits,
                                     sharded_sampled_softmax_loss,
                                     sharded_softmax_loss)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    bank = ShardedMemoryBank(N, D, momentum=0.5)
    bank.load_full(_problem())
    feats, idx = _batch(rank)
    f = feats.clone().requires_grad_()
    loss = sharded_softmax_loss(f, idx, bank, TAU, chunk_size=7)
    loss.sum().backward()
    f2 = feats.clone().requires_grad_()
    g = torch.Generator().manual_seed(7)
    sampled = sharded_sampled_softmax_loss(f2, idx, bank, TAU, M, g,
                                           chunk_size=5)
    sampled.sum().backward()
    rows = {}
    for name, neg, limit in _row_cases(world):
        f3 = feats.clone().requires_grad_()
        out_ = sharded_row_logits(f3, neg, bank, dense_limit=limit)
        (out_ * _row_weights(world)[rank * B:(rank + 1) * B]).sum().backward()
        rows[name] = (out_.detach(), f3.grad)
    sims, nbrs = sharded_knn_topk(feats, bank, k=5)
    bank.update(idx, feats)
    bank.update(idx, feats.flip(0))
    stats = bank.stats()
    torch.save(dict(loss=loss.detach(), grad=f.grad, sampled=sampled.detach(),
                    sampled_grad=f2.grad, sims=sims, nbrs=nbrs,
                    full=bank.gather_full(), stats=stats,
                    rows=(bank.start, bank.end), row_logits=rows),
               os.path.join(out, f'rank{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early aborts gloo now and then


def _reference(world):
    full = _problem()
    feats = torch.cat([_batch(r)[0] for r in range(world)])
    idx = torch.cat([_batch(r)[1] for r in range(world)])
    f = feats.clone().requires_grad_()
    loss = F.cross_entropy(f @ full.t() / TAU, idx, reduction='none')
    loss.sum().backward()
    g = torch.Generator().manual_seed(7)
    neg = sample_negatives(idx, M, N, shared=True, generator=g)
    f2 = feats.clone().requires_grad_()
    logits = torch.cat([(f2 * full[idx]).sum(1, keepdim=True),
                        f2 @ full[neg].t()], 1) / TAU
    sampled = F.cross_entropy(logits, torch.zeros(len(idx), dtype=torch.long),
                              reduction='none')
    sampled.sum().backward()
    rows = {}
    for name, neg, _ in _row_cases(world):
        f3 = feats.clone().requires_grad_()
        ref = (f3[:, None, :] * full[neg]).sum(-1) if neg.dim() == 2 else \
            f3 @ full[neg].t()
        (ref * _row_weights(world)).sum().backward()
        rows[name] = (ref.detach(), f3.grad)
    sims, nbrs = knn_topk(feats, full, k=5)
    mb = MemoryBank(N, D, momentum=0.5)
    mb.bank.copy_(full)
    mb.update(idx, feats)
    mb.update(idx, torch.cat([_batch(r)[0].flip(0) for r in range(world)]))
    return dict(loss=loss.detach(), grad=f.grad, sampled=sampled.detach(),
                sampled_grad=f2.grad, sims=sims, nbrs=nbrs, full=mb.bank,
                row_logits=rows)


@pytest.mark.dist
@pytest.mark.parametrize('world', [2, 4])
def test_sharded_equals_one_bank(tmp_path, world):
    spawn_gloo(_worker, world, str(tmp_path))
    got = [torch.load(tmp_path / f'rank{r}.pt') for r in range(world)]
    ref = _reference(world)
    cat = lambda key: torch.cat([g[key] for g in got])  # noqa: E731
    assert torch.allclose(cat('loss'), ref['loss'], atol=1e-6, rtol=1e-6)
    # gradients are O(1 / tau): 1e-6 relative to that scale
    assert torch.allclose(cat('grad'), ref['grad'], atol=1e-6 / TAU,
                          rtol=1e-5)
    assert torch.allclose(cat('sampled'), ref['sampled'], atol=1e-6,
                          rtol=1e-6)
    assert torch.allclose(cat('sampled_grad'), ref['sampled_grad'],
                          atol=1e-6 / TAU, rtol=1e-5)
    for name, (logits, grad) in ref['row_logits'].items():
        got_logits = torch.cat([g['row_logits'][name][0] for g in got])
        got_grad = torch.cat([g['row_logits'][name][1] for g in got])
        assert torch.allclose(got_logits, logits, atol=1e-6), name
        assert torch.allclose(got_grad, grad, atol=1e-5), name
    assert torch.equal(cat('nbrs'), ref['nbrs'])
    assert torch.allclose(cat('sims'), ref['sims'], atol=1e-6)
    for g in got:  # every rank's gathered bank equals the replicated one
        assert torch.allclose(g['full'], ref['full'], atol=1e-6)
        assert g['stats']['norm_min'] == pytest.approx(1.0, abs=1e-5)
    sizes = [g['rows'][1] - g['rows'][0] for g in got]
    assert sum(sizes) == N and max(sizes) == -(-N // world)
