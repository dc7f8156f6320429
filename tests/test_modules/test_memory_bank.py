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
