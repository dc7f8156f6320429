"""Faults of 2-process (gloo) training: BatchNorm statistics that differ
per rank, and a run killed after an iteration checkpoint and resumed."""
import os

import pytest
import torch

from mm_instdisc.utils.dist import shutdown_distributed
from tests.helpers import (SPLITMASK_QUICK_CONFIG, SPLITMASK_TINY_OPTS,
                           spawn_gloo)


def _bn_worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    from mm_instdisc.engine.hooks import average_bn_stats
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3),
                                torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 2, 3),
                                torch.nn.BatchNorm2d(2))
    model.train()
    torch.manual_seed(10 + rank)  # different data per rank
    model(torch.randn(8, 1, 9, 9) * (1 + rank) + rank)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # the hook syncs only where an iteration checkpoint is written (every
    # 2nd iteration here): not after iteration 1, after iteration 2
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook

    from mm_instdisc.engine.hooks import BNStatsSyncHook
    runner = SimpleNamespace(model=model, iter=0, max_iters=10, hooks=[
        CheckpointHook(interval=2, by_epoch=False)])
    BNStatsSyncHook().after_train_iter(runner, 0)
    synced_early = not all(torch.equal(v, before[k])
                           for k, v in model.state_dict().items())
    runner.iter = 1
    BNStatsSyncHook().after_train_iter(runner, 1)
    n = average_bn_stats(model)  # idempotent once synced
    torch.save(dict(before=before, after=model.state_dict(), n=n,
                    synced_early=synced_early),
               os.path.join(out, f'rank{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early aborts gloo now and then


@pytest.mark.dist
def test_bn_running_stats_become_the_mean_over_ranks(tmp_path):
    spawn_gloo(_bn_worker, 2, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pt') for r in (0, 1))
    assert r0['n'] == r1['n'] == 2
    assert not r0['synced_early'] and not r1['synced_early']
    for k in r0['after']:
        if k.endswith(('running_mean', 'running_var')):
            assert not torch.allclose(r0['before'][k], r1['before'][k])
            mean = 0.5 * (r0['before'][k] + r1['before'][k])
            assert torch.allclose(r0['after'][k], mean, atol=1e-6)
            assert torch.equal(r0['after'][k], r1['after'][k])
        else:  # weights, num_batches_tracked: untouched
            assert torch.equal(r0['after'][k], r0['before'][k])


def test_single_process_is_untouched():
    from mm_instdisc.engine.hooks import average_bn_stats
    bn = torch.nn.BatchNorm2d(3)
    bn(torch.randn(4, 3, 2, 2))
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    assert average_bn_stats(bn) == 0
    for k, v in bn.state_dict().items():
        assert torch.equal(v, state[k])


TINY = ['model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
        'train_dataloader.batch_size=8', 'default_hooks.logger.interval=1']
TWO_PROCESS = {  # algorithm -> (config, its tiny --cfg-options)
    'npid': ('configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py',
             TINY + ['model.bank_size=64', 'model.neck.in_channels=64',
                     'model.feat_dim=16', 'model.neck.out_channels=16',
                     'model.head.loss.num_negatives=8']),
    # the memory bank split over the 2 ranks, exact full softmax across them
    'npid_sharded': (
        'configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py',
        TINY + ['model.bank_size=64', 'model.neck.in_channels=64',
                'model.feat_dim=16', 'model.neck.out_channels=16',
                'model.head.loss.mode=softmax',
                'model.bank.type=ShardedMemoryBank',
                'model.bank.dtype=bfloat16']),
    'adco': ('configs/adco/adco_resnet18-w16_1xb64-coslr-2e_fashion-mnist-10k.py',
             TINY + ['train_dataloader.dataset.indices=64',
                     'model.neck.in_channels=64', 'model.neck.hid_channels=64',
                     'model.num_negatives=32']),
    'exemplar': ('configs/exemplar/exemplar-v2_resnet18-w16_1xb64-coslr-2e_'
                 'fashion-mnist-10k.py',
                 TINY + ['train_dataloader.dataset.indices=64',
                         'model.neck.in_channels=64',
                         'model.neck.hid_channels=64', 'model.queue_len=48']),
}


def _splitmask_case():
    opts = [f'{k}={v}' for k, v in SPLITMASK_TINY_OPTS.items()
            if k != 'train_cfg.max_epochs']
    return SPLITMASK_QUICK_CONFIG, opts + ['default_hooks.logger.interval=1']


ALGOS = ['npid', 'npid_sharded', 'adco', 'exemplar', 'splitmask']


def _resume_runs(tmp):
    """For every algorithm, the 2-process iteration-based run of 6
    iterations (a checkpoint after each), and the same run resumed in fresh
    processes from its checkpoint of iteration 3 alone, as if killed after
    it; plus a sharded-bank run of 3 iterations resumed in one process.
    Three launches in all (tests/dist_jobs.py): uninterrupted runs, resumed
    runs, the 1-process resume."""
    import shutil

    from tests.helpers import (ROOT, completed, run_dist_jobs,
                               write_fashion_mnist)
    data = write_fashion_mnist(tmp / 'fm', n_train=64, n_test=32)
    full, resumed = {}, {}
    for algo in ALGOS:
        base, tiny = (_splitmask_case() if algo == 'splitmask'
                      else TWO_PROCESS[algo])
        cfg = _iteration_config(tmp, algo, os.path.join(ROOT, base))
        opts = [f'train_dataloader.dataset.data_root={data}',
                f'test_dataloader.dataset.data_root={data}'] + tiny
        full[algo] = [cfg, '--work-dir', tmp / algo / 'full',
                      '--cfg-options', *opts]
        resumed[algo] = [cfg, '--work-dir', tmp / algo / 'killed',
                         '--cfg-options', *opts, 'resume=True']
    world = list(full['npid_sharded'])
    world[2] = tmp / 'world' / 'run'
    out = dict(full=completed(run_dist_jobs(
        list(full.values()) + [world + ['train_cfg.max_iters=3']])))
    if out['full']['returncode'] == 0:
        for algo in ALGOS:  # the killed run's work dir: iteration 3 only
            killed = tmp / algo / 'killed'
            killed.mkdir()
            shutil.copy(tmp / algo / 'full' / 'iter_3.pth', killed)
            (killed / 'last_checkpoint').write_text(
                str(killed / 'iter_3.pth'))
        run = tmp / 'world' / 'run'
        shutil.copy(run / 'iter_3.pth', tmp / 'world' / 'saved_iter_3.pth')
        out['world_3_mtime'] = os.path.getmtime(run / 'iter_3.pth')
        out['resumed'] = completed(run_dist_jobs(list(resumed.values())))
        out['world'] = completed(run_dist_jobs([world + ['resume=True']],
                                               nproc=1))
    return out


@pytest.fixture(scope='module')
def resumed_runs(tmp_path_factory):
    from tests.helpers import shared_result
    tmp, out = shared_result(tmp_path_factory, 'resume', _resume_runs)
    return dict(out, tmp=tmp)


def _ran(runs, *phases):
    from tests.helpers import assert_ran
    for phase in ('full', ) + phases:
        assert_ran(runs[phase])


@pytest.mark.dist
@pytest.mark.parametrize('algo', ALGOS)
def test_two_process_iteration_resume_is_exact(resumed_runs, algo):
    """2 processes, iteration-based: resumed from the checkpoint of
    iteration 3 in new processes, the final checkpoint (weights, bank /
    negatives / queue, BN statistics, optimizer, both ranks' random states)
    equals the uninterrupted run's."""
    _ran(resumed_runs, 'resumed')
    tmp = resumed_runs['tmp']
    a = torch.load(tmp / algo / 'full' / 'iter_6.pth', weights_only=False)
    b = torch.load(tmp / algo / 'killed' / 'iter_6.pth', weights_only=False)
    assert not (tmp / algo / 'killed' / 'iter_2.pth').exists()  # resumed
    for k in a['state_dict']:  # NaN = unset (NPIDLoss.log_z in softmax mode)
        torch.testing.assert_close(a['state_dict'][k], b['state_dict'][k],
                                   rtol=0, atol=0, equal_nan=True, msg=k)
    for i, s in a['optimizer']['state'].items():
        for key in s:
            assert torch.equal(s[key], b['optimizer']['state'][i][key])
    assert len(a['rng_states']) == len(b['rng_states']) == 2
    for ra, rb in zip(a['rng_states'], b['rng_states']):
        assert torch.equal(ra['torch'], rb['torch'])
    if algo == 'npid_sharded':  # rank 0 wrote the whole bank, gathered
        bank = a['state_dict']['memory_bank.bank']
        assert bank.shape == (64, 16) and bank.dtype == torch.bfloat16
        assert a['state_dict']['memory_bank.shard'].tolist() == [0, 64, 64, 1]


@pytest.mark.dist
def test_sharded_bank_resumes_on_another_world_size(resumed_runs):
    """A checkpoint of a 2-process run with a sharded bank resumes in one
    process (the whole bank it holds is re-sharded on loading): every
    bank row of the checkpoint is the resumed run's, and it trains on."""
    _ran(resumed_runs, 'world')
    run = resumed_runs['tmp'] / 'world' / 'run'
    # resumed after iteration 3 (a fresh run would have rewritten iter_3)
    assert os.path.getmtime(run / 'iter_3.pth') == resumed_runs[
        'world_3_mtime']
    end = torch.load(run / 'iter_6.pth', weights_only=False)
    saved = torch.load(resumed_runs['tmp'] / 'world' / 'saved_iter_3.pth',
                       weights_only=False)
    b3, b6 = (c['state_dict']['memory_bank.bank'] for c in (saved, end))
    assert b3.shape == b6.shape == (64, 16)
    assert not torch.equal(b3, b6)  # 3 more iterations updated rows


def _iteration_config(tmp_path, algo, base):
    cfg = tmp_path / f'iter_{algo}.py'
    cfg.write_text(f"""_base_ = [{base!r}]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6,
                 val_interval=1000)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=6,
                        by_epoch=False, begin=0, end=6)]
default_hooks = dict(checkpoint=dict(_delete_=True, type='CheckpointHook',
                                     interval=1, by_epoch=False))
val_cfg = None
val_dataloader = None
val_evaluator = None
""")
    return cfg
