
import pytest
import torch

from tests.helpers import build_tiny_npid, npid_batch

STATS = {'nce': {'log_z', 'pos_h', 'neg_h'}, 'softmax': {'pos_prob'},
         'sampled_softmax': {'pos_prob'}}


@pytest.mark.parametrize('loss_mode', ['nce', 'softmax', 'sampled_softmax'])
def test_loss_then_bank_update(loss_mode):
    torch.manual_seed(0)
    model = build_tiny_npid(loss_mode=loss_mode)
    data = model.data_preprocessor(npid_batch([1, 4, 9, 30]), True)
    before = model.memory_bank.bank.clone()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss', 'pos_sim'} | STATS[loss_mode]
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()  # the bank must not have changed in between
    assert torch.equal(model.memory_bank.bank, before)
    model.flush_bank_update()
    changed = (model.memory_bank.bank != before).any(1)
    assert changed.nonzero().flatten().tolist() == [1, 4, 9, 30]
    assert torch.allclose(model.memory_bank.bank.norm(dim=1),
                          torch.ones(32), atol=1e-5)


def test_loss_over_an_unapplied_bank_update_is_an_error():
    """The bank update has one owner (MemoryBankHook, or the loop's own
    flush_bank_update call): forgetting it fails loudly, not silently with a
    bank that never moves."""
    model = build_tiny_npid(loss_mode='softmax')
    data = model.data_preprocessor(npid_batch([1, 4]), True)
    model(**data, mode='loss')['loss'].backward()
    with pytest.raises(RuntimeError, match='MemoryBankHook'):
        model(**data, mode='loss')
    model.flush_bank_update()
    assert torch.isfinite(model(**data, mode='loss')['loss'])


def test_tensor_and_predict_modes():
    model = build_tiny_npid()
    data = model.data_preprocessor(npid_batch([0, 1]), False)
    feats = model(data['inputs'][0], mode='tensor')
    assert feats[-1].shape[:2] == (2, 64)  # stage-4 width 8 * 8
    out = model(data['inputs'][0], data['data_samples'], mode='predict')
    assert out[0].feat.shape == (128, )
    assert torch.allclose(out[0].feat.norm(), torch.tensor(1.), atol=1e-5)


def test_bank_in_state_dict():
    model = build_tiny_npid()
    sd = model.state_dict()
    assert sd['memory_bank.bank'].shape == (32, 128)
    assert 'head.loss_module.log_z' in sd and 'head.loss_module.z_calls' in sd


def test_missing_sample_idx_is_a_clear_error():
    model = build_tiny_npid()
    data = model.data_preprocessor(npid_batch([0, 1], with_idx=False), True)
    with pytest.raises(ValueError, match="no 'sample_idx'"):
        model(**data, mode='loss')


def test_non_finite_features_are_a_clear_error():
    model = build_tiny_npid()
    data = model.data_preprocessor(npid_batch([0, 1]), True)
    with torch.no_grad():
        model.neck.fc.weight.fill_(float('nan'))
    with pytest.raises(ValueError, match='non-finite'):
        model(**data, mode='loss')


def test_index_beyond_bank_is_a_clear_error():
    model = build_tiny_npid(bank_size=16)
    data = model.data_preprocessor(npid_batch([3, 20]), True)
    with pytest.raises(ValueError, match='bank length match'):
        model(**data, mode='loss')
