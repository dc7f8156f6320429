"""read_checkpoint's weights_only policy and unwrap_model."""
import pickle

import pytest
import torch
from torch import nn

from mm_instdisc.utils.checkpoint import read_checkpoint, unwrap_model


class Note:
    """A Python object beside the tensors, as mmengine's message hub is."""

    def __init__(self, text):
        self.text = text


def test_tensors_only_file_reads_in_both_modes(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save(dict(state_dict={'w': torch.arange(3.)}), path)
    for tensors_only in (False, True):
        got = read_checkpoint(str(path), tensors_only=tensors_only)
        assert torch.equal(got['state_dict']['w'], torch.arange(3.))


def test_file_with_python_objects_needs_the_second_read(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}, meta=Note('epoch 3')),
               path)
    # torch alone (weights_only=True) refuses it ...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    # ... the default policy reads it again with weights_only=False
    got = read_checkpoint(str(path))
    assert got['meta'].text == 'epoch 3'
    assert torch.equal(got['state_dict']['w'], torch.ones(2))
    with pytest.raises(pickle.UnpicklingError, match='ckpt.pth holds more '
                       'than tensors'):
        read_checkpoint(str(path), tensors_only=True)


def test_map_location_and_missing_file(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save({'w': torch.zeros(1)}, path)
    seen = []

    def where(storage, location):
        seen.append(location)
        return storage

    read_checkpoint(str(path), map_location=where)
    assert seen == ['cpu']
    with pytest.raises(FileNotFoundError, match='Checkpoint not found.*nope'):
        read_checkpoint(str(tmp_path / 'nope.pth'))


def _fake_ddp(cls, inner):
    """A DDP-class wrapper holding ``inner`` without a process group."""
    wrapper = cls.__new__(cls)
    nn.Module.__init__(wrapper)
    wrapper.module = inner
    return wrapper


def test_unwrap_model():
    from mmengine.model import MMDistributedDataParallel
    net = nn.Linear(2, 2)
    assert unwrap_model(net) is net
    assert unwrap_model(nn.DataParallel(net)) is net
    assert unwrap_model(nn.DataParallel(nn.DataParallel(net))) is net
    for cls in (nn.parallel.DistributedDataParallel,
                MMDistributedDataParallel):
        assert unwrap_model(_fake_ddp(cls, net)) is net
    # a submodule that happens to be called `module` is no wrapper
    holder = nn.Module()
    holder.module = net
    assert unwrap_model(holder) is holder
