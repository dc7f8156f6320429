"""2-process (gloo) training runs of the AdCo, Exemplar, SplitMask and
ImageNet-21k NPID configs, through tools/train.py's own argument handling
as ``bash tools/dist_train.sh CONFIG 2 --cfg-options ...`` runs it: hooks,
optim wrappers, DDP, the checkpoint of every rank's state.

The four runs share one launch (tests/dist_jobs.py: starting the processes
cost more than the runs); ``tools/dist_train.sh`` itself is run by
test_distributed.py (NPID) and the fault tests."""
import os

import pytest
import torch

from tests.helpers import (ROOT, SPLITMASK_QUICK_CONFIG, SPLITMASK_TINY_OPTS,
                           assert_ran, completed, run_dist_jobs, shared_result,
                           write_fashion_mnist, write_in21k)

pytestmark = pytest.mark.dist
IN21K_CONFIG = os.path.join(
    ROOT, 'configs/npid/npid_resnet50_64xb64-softmax-sharded-bf16-bank-coslr-'
    '30e_in21k.py')


def _jobs(tmp):
    data = write_fashion_mnist(tmp / 'fm', n_train=64, n_test=32)
    in21k = tmp / 'imagenet21k'
    n_in21k = write_in21k(str(in21k))
    fm = [f'train_dataloader.dataset.data_root={data}',
          f'test_dataloader.dataset.data_root={data}']
    tiny_resnet = ['train_dataloader.dataset.indices=64',
                   'train_dataloader.batch_size=8',
                   'test_dataloader.dataset.indices=32',
                   'model.backbone.stem_channels=8',
                   'model.backbone.base_channels=8',
                   'model.neck.in_channels=64', 'model.neck.hid_channels=64',
                   'train_cfg.max_epochs=1']
    jobs = {
        'adco': (os.path.join(
            ROOT, 'configs/adco/adco_resnet18-w16_1xb64-coslr-2e_'
            'fashion-mnist-10k.py'),
            fm + tiny_resnet + ['model.num_negatives=32']),
        'exemplar': (os.path.join(
            ROOT, 'configs/exemplar/exemplar-v2_resnet18-w16_1xb64-coslr-2e_'
            'fashion-mnist-10k.py'),
            fm + tiny_resnet + ['model.queue_len=48']),
        'splitmask': (SPLITMASK_QUICK_CONFIG, [
            f'{k}={v}' for k, v in SPLITMASK_TINY_OPTS.items()] + fm),
        'in21k': (IN21K_CONFIG, [
            f'train_dataloader.dataset.data_root={in21k}',
            f'model.bank_size={n_in21k}', 'model.backbone.depth=18',
            'model.neck.in_channels=512', 'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_dataloader.dataset.pipeline.1.scale=32',
            'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1']),
    }
    return n_in21k, {name: [cfg, '--work-dir', tmp / name, '--cfg-options',
                            *opts] for name, (cfg, opts) in jobs.items()}


def _run(tmp):
    n_in21k, jobs = _jobs(tmp)
    return dict(n_in21k=n_in21k,
                result=completed(run_dist_jobs(list(jobs.values()))))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp, out = shared_result(tmp_path_factory, 'dist_train', _run)
    return dict(out, tmp=tmp)


def _checkpoint(runs, name, epoch=1):
    assert_ran(runs['result'])
    return torch.load(runs['tmp'] / name / f'epoch_{epoch}.pth',
                      weights_only=False)


def test_adco_two_cpu_processes(runs):
    """AdCo: hook, wrapper, DDP; the negatives filled from both ranks."""
    ckpt = _checkpoint(runs, 'adco')
    assert int(ckpt['state_dict']['negatives.num_filled']) == 32
    assert len(ckpt['rng_states']) == 2
    assert torch.isfinite(ckpt['state_dict']['negatives.weight']).all()


def test_exemplar_two_cpu_processes(runs):
    ckpt = _checkpoint(runs, 'exemplar')
    sd = ckpt['state_dict']
    # 4 steps x 2 ranks x 8 keys = 64 into 48 slots
    assert int(sd['queue.ptr']) == 64 % 48
    assert (sd['queue.labels'] >= 0).all() and (sd['queue.labels'] < 10).all()
    assert len(ckpt['rng_states']) == 2


def test_splitmask_two_cpu_processes(runs):
    ckpt = _checkpoint(runs, 'splitmask')
    assert len(ckpt['rng_states']) == 2
    assert 'target_generator.codebook' in ckpt['state_dict']


def test_in21k_config_trains_with_two_processes(runs):
    """The ImageNet-21k config (full softmax over a sharded bf16 bank) on
    tiny JPEGs in mmpretrain's ImageNet21k layout; only the sizes are
    overridden (bank rows = images, crop, batch, workers)."""
    n = runs['n_in21k']
    state = _checkpoint(runs, 'in21k', epoch=2)['state_dict']
    # rank 0 wrote the whole bank (both shards, bfloat16), unit rows
    assert state['memory_bank.bank'].shape == (n, 128)
    assert state['memory_bank.bank'].dtype == torch.bfloat16
    assert state['memory_bank.shard'].tolist() == [0, n, n, 1]
    norms = state['memory_bank.bank'].float().norm(dim=1)
    assert torch.allclose(norms, torch.ones(n), atol=2e-2)
    log = open(next((runs['tmp'] / 'in21k').glob('*/*.log'))).read()
    assert 'pos_prob' in log and 'loss' in log
