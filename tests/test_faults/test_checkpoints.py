"""Fault injection on checkpoints: a crash while writing one never damages
the previous one, and --resume falls back past a damaged latest checkpoint."""
import copy
import os
import shutil

import pytest
import torch

from tests.helpers import tiny_npid_cfg, write_fashion_mnist


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def truncate(path, keep=0.5):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(int(size * keep))


def flip_bytes(path, offset=0.3, n=64):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.seek(int(size * offset))
        f.write(b'\xff' * n)


def test_atomic_put_keeps_the_old_file_when_the_write_dies(tmp_path,
                                                           monkeypatch):
    from mm_instdisc.engine.hooks.checkpoint_safety_hook import \
        AtomicLocalBackend
    target = tmp_path / 'epoch_2.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old checkpoint', target)
    backend.put_text('epoch_2.pth', tmp_path / 'last_checkpoint')

    def die(*args):
        raise KeyboardInterrupt('killed during the write')

    monkeypatch.setattr(os, 'fsync', die)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'new checkpoint, half written', target)
    with pytest.raises(KeyboardInterrupt):
        backend.put_text('epoch_3.pth', tmp_path / 'last_checkpoint')
    assert target.read_bytes() == b'old checkpoint'
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_2.pth'
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth', 'last_checkpoint']
    monkeypatch.undo()
    backend.put(b'new', target)
    assert target.read_bytes() == b'new'


def test_checkpoint_problem_names_what_is_wrong(tmp_path):
    from mm_instdisc.engine.hooks.checkpoint_safety_hook import \
        checkpoint_problem
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, good)
    assert checkpoint_problem(str(good)) is None
    cut = tmp_path / 'cut.pth'
    shutil.copy(good, cut)
    truncate(cut)
    assert 'damaged zip container' in checkpoint_problem(str(cut))
    bad = tmp_path / 'bad.pth'
    shutil.copy(good, bad)
    flip_bytes(bad)
    assert 'CRC' in checkpoint_problem(str(bad)) or 'damaged' in \
        checkpoint_problem(str(bad))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    assert checkpoint_problem(str(empty)) == 'file is empty'
    assert checkpoint_problem(str(tmp_path / 'nope.pth')) == \
        'file does not exist'
    text = tmp_path / 'text.pth'
    text.write_text('hello')
    assert 'not a torch checkpoint' in checkpoint_problem(str(text))


def run(cfg):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    return runner


def safe_cfg(data_root, work_dir, epochs):
    cfg = tiny_npid_cfg(data_root, work_dir, epochs=epochs)
    # CheckpointSafetyHook comes from default_runtime's default_hooks
    assert cfg.default_hooks.checkpoint_safety.type == 'CheckpointSafetyHook'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    return cfg


@pytest.mark.parametrize('damage', [truncate, flip_bytes])
def test_resume_falls_back_to_newest_intact_checkpoint(data_root, tmp_path,
                                                       damage):
    work = tmp_path / 'w'
    full = run(tiny_npid_cfg(data_root, tmp_path / 'full', epochs=3))
    run(safe_cfg(data_root, work, epochs=2))
    damage(str(work / 'epoch_2.pth'))  # the crash hit the latest one
    cfg = safe_cfg(data_root, work, epochs=3)
    cfg.resume = True
    resumed = run(cfg)
    logs = sorted(work.glob('*/*.log'))
    warnings = logs[-1].read_text().splitlines()
    msg = [w for w in warnings if 'damaged' in w]
    assert msg and 'epoch_2.pth' in msg[0] and 'epoch_1.pth' in msg[0]
    # resumed from epoch 1: two more epochs, identical to the full run
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_explicit_damaged_resume_is_a_clear_error(data_root, tmp_path):
    work = tmp_path / 'w'
    run(safe_cfg(data_root, work, epochs=2))
    truncate(str(work / 'epoch_2.pth'))
    cfg = safe_cfg(data_root, work, epochs=3)
    cfg.resume, cfg.load_from = True, str(work / 'epoch_2.pth')
    with pytest.raises(RuntimeError, match=r'epoch_2\.pth: damaged zip.*'
                       r'epoch_1\.pth'):
        run(cfg)


def test_checkpoints_are_written_through_the_atomic_backend(data_root,
                                                            tmp_path):
    runner = run(safe_cfg(data_root, tmp_path / 'w', epochs=1))
    hook = [h for h in runner.hooks if type(h).__name__ == 'CheckpointHook']
    assert hook[0].backend_args == dict(backend='atomic_local')
    assert type(hook[0].file_backend).__name__ == 'AtomicLocalBackend'
    assert not [p for p in os.listdir(tmp_path / 'w') if p.endswith('.tmp')]
