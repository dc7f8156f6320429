import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import MemoryBank


def test_rows_are_unit_and_persistent():
    bank = MemoryBank(50, 8)
    assert torch.allclose(bank.bank.norm(dim=1), torch.ones(50), atol=1e-6)
    assert 'bank' in bank.state_dict()


def test_update_matches_formula():
    torch.manual_seed(0)
    bank = MemoryBank(20, 6, momentum=0.3)
    before = bank.bank.clone()
    idx = torch.tensor([4, 11, 0])
    f = torch.randn(3, 6)
    bank.update(idx, f)
    fn = F.normalize(f, dim=1)
    for j, i in enumerate(idx.tolist()):
        v = 0.3 * before[i] + 0.7 * fn[j]
        assert torch.allclose(bank.bank[i], v / v.norm(), atol=1e-6)
    untouched = [i for i in range(20) if i not in idx.tolist()]
    assert torch.equal(bank.bank[untouched], before[untouched])


def test_duplicate_indices_first_wins():
    bank = MemoryBank(5, 3, momentum=0.0)
    f = torch.tensor([[1., 0, 0], [0, 1., 0]])
    bank.update(torch.tensor([2, 2]), f)
    assert torch.allclose(bank.bank[2], torch.tensor([1., 0, 0]))


def test_fill_and_stats():
    bank = MemoryBank(4, 2)
    bank.fill(torch.arange(4), torch.tensor([[2., 0], [0, 3.], [1., 1.], [-1, 0]]))
    assert torch.allclose(bank.bank.norm(dim=1), torch.ones(4))
    s = bank.stats()
    assert s['norm_min'] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(length=0, feat_dim=4), 'Illegal memory bank size'),
    (dict(length=4, feat_dim=4, momentum=1.0), 'Illegal momentum'),
])
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MemoryBank(**kwargs)


def test_bad_updates():
    bank = MemoryBank(10, 4, check_interval=1)  # check every update
    with pytest.raises(ValueError, match='out of range'):
        bank.update(torch.tensor([10]), torch.randn(1, 4))
    with pytest.raises(ValueError, match='non-finite'):
        bank.update(torch.tensor([1]), torch.tensor([[float('nan'), 0, 0, 0]]))
    with pytest.raises(ValueError, match='shape'):
        bank.update(torch.tensor([1]), torch.randn(1, 5))


def test_update_checks_are_periodic():
    """Checks that read back from the device run on update 1, 1 + k, ..."""
    bank = MemoryBank(10, 4, check_interval=2)
    bank.update(torch.tensor([1]), torch.randn(1, 4))  # checked, fine
    nan = torch.tensor([[float('nan'), 0, 0, 0]])
    bank.update(torch.tensor([2]), nan)  # not checked: no device sync
    with pytest.raises(ValueError, match='MemoryBank.update contains 1 non-finite'):
        bank.update(torch.tensor([3]), nan)


# ------------------------------------------------ one contract for both banks
def _rank_batch(rank):
    """Rank r's batch: 3 + r rows (uneven, as without round-up), one index
    shared by both ranks (a padded sampler repeats images)."""
    g = torch.Generator().manual_seed(20 + rank)
    idx = torch.tensor([5, 2 * rank + 1, 9 + rank, 12][:3 + rank])
    return idx, torch.randn(len(idx), 6, generator=g)


def _gather_worker(rank, world, port, out):
    import os

    import torch.distributed as dist

    from mm_instdisc.utils.dist import shutdown_distributed
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(rank)  # different random rows on purpose
    bank = MemoryBank(20, 6, momentum=0.3)
    bank.broadcast_from(0)
    after_sync = bank.bank.clone()
    idx, f = _rank_batch(rank)
    bank.fill(idx, f)
    bank.update(idx, f.flip(1))  # this rank's batch only: update gathers
    bank.check_sync()
    torch.save(dict(sync=after_sync, bank=bank.bank.clone()),
               os.path.join(out, f'rank{rank}.pt'))
    shutdown_distributed()


@pytest.mark.dist
def test_update_and_fill_gather_every_ranks_batch(tmp_path):
    """Each rank passes its own batch; every rank ends with the bank one
    process gets from the concatenated batches (rank order, first
    occurrence of a repeated index wins)."""
    from tests.helpers import spawn_gloo
    spawn_gloo(_gather_worker, 2, str(tmp_path))
    got = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    torch.manual_seed(0)
    ref = MemoryBank(20, 6, momentum=0.3)  # rank 0's rows, broadcast
    assert torch.equal(got[0]['sync'], ref.bank)
    assert torch.equal(got[1]['sync'], ref.bank)
    idx = torch.cat([_rank_batch(r)[0] for r in range(2)])
    f = torch.cat([_rank_batch(r)[1] for r in range(2)])
    first = {}
    for j, i in enumerate(idx.tolist()):
        first.setdefault(i, j)
    for i, j in first.items():  # written out: fill, then the update
        ref.bank[i] = F.normalize(f[j], dim=0)
        v = 0.3 * ref.bank[i] + 0.7 * F.normalize(f[j].flip(0), dim=0)
        ref.bank[i] = v / v.norm()
    for g in got:
        assert torch.allclose(g['bank'], ref.bank, atol=1e-6)
    assert torch.equal(got[0]['bank'], got[1]['bank'])


def test_both_banks_offer_the_same_interface():
    from mm_instdisc.modules import ShardedMemoryBank
    names = ['update', 'fill', 'get', 'rows', 'stats', 'gather_to',
             'checkpoint_state', 'broadcast_from', 'check_sync',
             'rank_local_buffers', 'softmax_loss', 'pair_logits',
             'sampled_softmax_loss', 'length', 'feat_dim']
    replicated = MemoryBank(10, 4)
    sharded = ShardedMemoryBank(10, 4, rank=0, world_size=1)
    missing = [(type(b).__name__, n) for b in (replicated, sharded)
               for n in names if not hasattr(b, n)]
    assert not missing, missing
    # one process: the replicated bank needs nothing more in a checkpoint
    # and has no rank-local buffers; a one-shard bank is the whole bank
    assert replicated.checkpoint_state() == {}
    assert replicated.rank_local_buffers() == ()
    assert torch.equal(replicated.gather_to(0), replicated.bank)
    state = sharded.checkpoint_state(collective=False)
    assert torch.equal(state['bank'], sharded.bank)
    assert state['shard'].tolist() == [0, 10, 10, 1]
    assert sharded.rank_local_buffers() == ('bank', 'shard', 'draws')


def test_npid_loss_module_imports_no_bank():
    """No import circle: the banks use the loss's maths, never the reverse."""
    import os.path as osp

    from tests.helpers import ROOT
    from tests.test_layering import imported_modules
    names = imported_modules(osp.join(ROOT, 'mm_instdisc', 'modules',
                                      'npid_loss.py'))
    assert not [n for n in names if 'memory_bank' in n], names
