"""TimeBudgetTrainLoop: the length decided from a (fake) clock, warm-up +
cosine over it, epochs, exact resume, argument errors, and
apply_time_budget on the shipped 15-minute configs."""
import copy
import glob
import math
import os

import pytest
import torch

from tests.helpers import ROOT, tiny_npid_cfg, write_fashion_mnist

N_TRAIN, BATCH = 64, 16  # 4 iterations per epoch
EPOCH_LEN = N_TRAIN // BATCH


def reference_lr(t, base, total, decided_at, start, eta, warmup_iters=0,
                 warmup_ratio=None):
    """The schedule the loop documents, written out: the lr of iteration
    ``t`` when the length ``total`` was decided after ``decided_at``
    iterations."""
    if warmup_ratio is None:
        ramp_from, ramp_to = 0, warmup_iters
    else:  # the ramp waits for the decision
        ramp_from, ramp_to = decided_at, max(decided_at,
                                             round(warmup_ratio * total))
    if t < ramp_from:
        return base * start
    if t < ramp_to:
        return base * (start + (1 - start) * (t - ramp_from) /
                       (ramp_to - ramp_from))
    cos_from = max(ramp_to, decided_at)
    if t < cos_from:
        return base
    progress = (t - cos_from) / (total - cos_from)
    return base * (eta + (1 - eta) * (1 + math.cos(math.pi * progress)) / 2)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from mm_instdisc.engine.loops import time_budget_loop
    c = FakeClock()
    monkeypatch.setattr(time_budget_loop, 'wall_clock', c)
    return c


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=N_TRAIN, n_test=32)


class Crash(Exception):
    """Stands for a process killed right after a checkpoint was written."""


def make_hooks(clock, setup_s, iter_s, record, crash_iter=None,
               crash_epoch=None):
    """Hooks that advance the fake clock (``setup_s`` in before_train, then
    ``iter_s(iteration)`` at each iteration), record (iter, epoch, lr,
    sample indices) per iteration and validations, and crash after the
    checkpoint of an iteration / epoch."""
    from mmengine.hooks import Hook

    class Ticks(Hook):
        priority = 'HIGHEST'

        def before_train(self, runner):
            clock.now += setup_s

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            clock.now += iter_s(runner.iter)

    class Record(Hook):
        priority = 'LOWEST'  # after CheckpointHook has written

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            idx = [s.sample_idx for s in data_batch['data_samples']]
            lrs = [g['lr'] for g in runner.optim_wrapper.param_groups]
            record.setdefault('iters', []).append(
                (runner.iter, runner.epoch, batch_idx, lrs[0], idx))

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if crash_iter is not None and runner.iter + 1 == crash_iter:
                raise Crash(crash_iter)

        def after_train_epoch(self, runner):
            record.setdefault('epochs', []).append(runner.epoch)
            if crash_epoch is not None and runner.epoch + 1 == crash_epoch:
                raise Crash(crash_epoch)

        def after_val_epoch(self, runner, metrics=None):
            record.setdefault('vals', []).append(runner.iter)

    return [Ticks(), Record()]


def budget_cfg(data_root, work_dir, name, val=False, ckpt=None, **loop):
    cfg = tiny_npid_cfg(data_root, work_dir, n_train=N_TRAIN,
                        batch_size=BATCH)
    cfg.experiment_name = name  # a message hub of its own
    cfg.optim_wrapper.optimizer.lr = 0.05
    cfg.param_scheduler = None
    cfg.train_cfg = dict(type='TimeBudgetTrainLoop', **loop)
    if not val:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = ckpt
    return cfg


def train(cfg, hooks, crash=False):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    for h in hooks:
        runner.register_hook(h)
    if crash:
        with pytest.raises(Crash):
            runner.train()
    else:
        runner.train()
    return runner


# ------------------------------------------------------------ arithmetic
@pytest.mark.parametrize('args,expected', [
    # budget, elapsed, s/iter, done, reserve, bound
    ((60.0, 42.0, 0.5, 6, 0.1, None), 6 + 24),
    ((900.0, 100.0, 0.25, 20, 0.0, None), 20 + 3200),
    ((900.0, 100.0, 0.25, 20, 0.0, 1000), 1000),  # bounded
    ((60.0, 70.0, 0.5, 6, 0.0, None), 6),  # spent: stop now
    ((60.0, 10.0, None, 8, 0.0, 8), 8),  # bound reached before timing
    ((10.0, 2.0, 3.0, 1, 0.0, None), 1 + 2),  # floor, not round
])
def test_plan_iterations(args, expected):
    from mm_instdisc.engine import plan_iterations
    assert plan_iterations(*args) == expected


@pytest.mark.parametrize('kw,decided_at,total', [
    (dict(warmup_iters=6), 3, 20),  # decided inside the warm-up
    (dict(warmup_iters=2), 5, 20),  # decided after it: cosine from there
    (dict(warmup_ratio=0.3), 3, 20),  # ramp from the decision to 6
    (dict(), 4, 12),  # no warm-up
])
def test_time_budget_lr_follows_the_formula(kw, decided_at, total):
    from mm_instdisc.engine import TimeBudgetLR
    w = torch.nn.Parameter(torch.zeros(1))
    v = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([dict(params=[w], lr=0.2),
                           dict(params=[v], lr=3.0)], lr=0.2)
    sched = TimeBudgetLR(opt, start_factor=0.1, eta_min_ratio=0.05, **kw)
    seen = []
    for t in range(total):
        if t == decided_at:
            sched.set_length(total, decided_at)
        seen.append([g['lr'] for g in opt.param_groups])
        opt.step()
        sched.step()
    for t, (a, b) in enumerate(seen):
        ref = dict(total=total, decided_at=decided_at, start=0.1, eta=0.05,
                   **kw)
        assert a == pytest.approx(reference_lr(t, 0.2, **ref), rel=1e-12)
        assert b == pytest.approx(reference_lr(t, 3.0, **ref), rel=1e-12)
    # the last iteration is the cosine's last step above eta_min
    assert 0.2 * 0.05 < seen[-1][0] < seen[-2][0]


# ------------------------------------------------------- through a Runner
def test_runner_decides_the_expected_length(data_root, tmp_path, clock):
    """1 minute, 10 % reserve; 30 s of set-up, 2 untimed iterations of 5 s,
    then 0.5 s per iteration: after 2 + 4 iterations 42 s are spent and
    floor((54 - 42) / 0.5) = 24 more fit: 30 iterations."""
    record = {}
    cfg = budget_cfg(data_root, tmp_path, 'decide', val=True, minutes=1,
                     probe_iters=4, skip_iters=2, reserve_ratio=0.1,
                     warmup_iters=8, warmup_start_factor=0.1,
                     eta_min_ratio=0.01, val_interval=12)
    hooks = make_hooks(clock, 30.0, lambda i: 5.0 if i < 2 else 0.5, record)
    runner = train(cfg, hooks)
    loop = runner.train_loop
    assert loop.decision['total_iters'] == 30
    assert loop.decision['decided_at'] == 6
    assert loop.decision['s_per_iter'] == pytest.approx(0.5)
    assert loop.decision['elapsed_s'] == pytest.approx(42.0)
    assert runner.iter == loop.max_iters == 30
    assert runner.message_hub.get_info('time_budget')['total_iters'] == 30
    iters = record['iters']
    assert [it[0] for it in iters] == list(range(30))
    # real epochs: runner.epoch, batch_idx within the epoch, a new shuffle
    assert [it[1] for it in iters] == [t // EPOCH_LEN for t in range(30)]
    assert [it[2] for it in iters] == [t % EPOCH_LEN for t in range(30)]
    assert record['epochs'] == list(range(8))  # 7 whole + 1 partial
    assert runner.epoch == loop.max_epochs == 8
    orders = [sum((it[4] for it in iters if it[1] == e), [])
              for e in range(7)]
    assert all(sorted(o) == list(range(N_TRAIN)) for o in orders)
    assert len({tuple(o) for o in orders}) == 7
    # warm-up over 8 iterations, cosine over [8, 30)
    for t, _, _, lr, _ in iters:
        assert lr == pytest.approx(
            reference_lr(t, 0.05, 30, 6, 0.1, 0.01, warmup_iters=8),
            rel=1e-12), t
    assert record['vals'] == [12, 24, 30]


def test_budget_spent_during_probe_stops_training(data_root, tmp_path, clock):
    record = {}
    cfg = budget_cfg(data_root, tmp_path, 'spent', minutes=0.5,
                     probe_iters=2, skip_iters=1, reserve_ratio=0.0)
    runner = train(cfg, make_hooks(clock, 40.0, lambda i: 1.0, record))
    assert runner.train_loop.decision['total_iters'] == 3
    assert runner.iter == 3 and record['epochs'] == [0]


def test_max_epochs_bounds_the_length(data_root, tmp_path, clock):
    cfg = budget_cfg(data_root, tmp_path, 'bound', minutes=10,
                     probe_iters=2, skip_iters=1, max_epochs=2)
    runner = train(cfg, make_hooks(clock, 0.0, lambda i: 0.1, {}))
    assert runner.train_loop.decision['total_iters'] == 2 * EPOCH_LEN
    assert runner.iter == 2 * EPOCH_LEN and runner.epoch == 2


@pytest.mark.parametrize('by_epoch', [False, True])
def test_resumed_run_continues_exactly(data_root, tmp_path, clock, by_epoch):
    """15 s, 1 s per iteration: 3 + 12 = 15 iterations. Killed after the
    checkpoint of iteration 9 (mid-epoch) or of epoch 2, then resumed on a
    machine 5x slower: the decided length, the lr of every iteration and
    the final weights are those of the uninterrupted run."""
    loop = dict(minutes=0.25, probe_iters=2, skip_iters=1,
                reserve_ratio=0.0, warmup_iters=4, warmup_start_factor=0.2,
                eta_min_ratio=0.1)
    ckpt = dict(type='CheckpointHook', by_epoch=by_epoch, interval=1,
                max_keep_ckpts=2)
    crash = dict(crash_epoch=2) if by_epoch else dict(crash_iter=9)
    stop = 2 * EPOCH_LEN if by_epoch else 9

    full_rec = {}
    full = train(budget_cfg(data_root, tmp_path / 'full', 'full', ckpt=ckpt,
                            **loop),
                 make_hooks(clock, 0.0, lambda i: 1.0, full_rec))
    assert full.train_loop.decision['total_iters'] == 15

    clock.now = 0.0
    killed = budget_cfg(data_root, tmp_path / 'killed', 'killed', ckpt=ckpt,
                        **loop)
    train(killed, make_hooks(clock, 0.0, lambda i: 1.0, {}, **crash),
          crash=True)
    names = [os.path.basename(p)
             for p in glob.glob(str(tmp_path / 'killed' / '*.pth'))]
    assert ('epoch_2.pth' if by_epoch else 'iter_9.pth') in names

    resumed_rec = {}
    cfg = copy.deepcopy(killed)
    cfg.experiment_name = 'resumed'
    cfg.resume, cfg.load_from = True, None  # the latest checkpoint
    resumed = train(cfg, make_hooks(clock, 100.0, lambda i: 5.0,
                                    resumed_rec))
    assert resumed.train_loop.decision['total_iters'] == 15
    assert resumed.iter == 15
    full_lrs = [(t, e, lr, idx) for t, e, _, lr, idx in full_rec['iters']]
    res_lrs = [(t, e, lr, idx) for t, e, _, lr, idx in resumed_rec['iters']]
    assert res_lrs == full_lrs[stop:]  # lr, epoch and batches bit-equal
    for t, _, lr, _ in full_lrs:
        assert lr == pytest.approx(
            reference_lr(t, 0.05, 15, 3, 0.2, 0.1, warmup_iters=4),
            rel=1e-12)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resumed_before_the_decision_keeps_the_time_spent(
        data_root, tmp_path, clock):
    """Killed after iteration 2 (checkpointed before the decision, 2 s
    spent) and resumed at 2 s per iteration: 1 untimed + 2 timed
    iterations, 2 + 3 * 2 = 8 s spent after 5 iterations, floor((15 - 8) /
    2) = 3 more: 8 iterations (9 if the 2 s were forgotten)."""
    loop = dict(minutes=0.25, probe_iters=2, skip_iters=1, reserve_ratio=0.0)
    ckpt = dict(type='CheckpointHook', by_epoch=False, interval=1)
    killed = budget_cfg(data_root, tmp_path, 'early', ckpt=ckpt, **loop)
    train(killed, make_hooks(clock, 0.0, lambda i: 1.0, {}, crash_iter=2),
          crash=True)
    cfg = copy.deepcopy(killed)
    cfg.experiment_name = 'early-resumed'
    cfg.resume, cfg.load_from = True, None
    clock.now = 1000.0
    runner = train(cfg, make_hooks(clock, 0.0, lambda i: 2.0, {}))
    d = runner.train_loop.decision
    assert (d['decided_at'], d['elapsed_s'], d['total_iters']) == (5, 8.0, 8)
    assert runner.iter == 8


def _dist_worker(rank, world, port, data_root, work_dir, out):
    """One rank of a 2-process gloo group, each with its own runner (no
    DDP: the decision is what is tested) and its own clock speed."""
    import datetime

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    from mm_instdisc.engine.loops import time_budget_loop
    c = FakeClock()
    time_budget_loop.wall_clock = c
    cfg = budget_cfg(data_root, os.path.join(work_dir, str(rank)),
                     f'rank{rank}', minutes=8 / 60, probe_iters=2,
                     skip_iters=1, reserve_ratio=0.0)
    # rank 0 alone: 3 + floor((8 - 3) / 1) = 8; rank 1 alone: 3 + 0 = 3
    runner = train(cfg, make_hooks(c, 0.0, lambda i: 1.0 + 2 * rank, {}))
    torch.save(dict(total=runner.train_loop.decision['total_iters'],
                    iters=runner.iter),
               os.path.join(out, f'rank{rank}.pt'))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.dist
def test_every_rank_trains_rank_zeros_decision(data_root, tmp_path):
    from tests.helpers import spawn_gloo
    spawn_gloo(_dist_worker, 2, str(data_root), str(tmp_path / 'w'),
               str(tmp_path))
    for rank in (0, 1):
        got = torch.load(tmp_path / f'rank{rank}.pt')
        assert got == dict(total=8, iters=8), rank


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize('kw,match', [
    (dict(minutes=0), r'minutes: 0\b'),
    (dict(minutes=-5), 'minutes: -5'),
    (dict(minutes=float('inf')), 'minutes: inf'),
    (dict(minutes='15'), "minutes: '15'"),
    (dict(minutes=1, probe_iters=0), 'probe_iters: 0'),
    (dict(minutes=1, probe_iters=2.5), 'probe_iters: 2.5; expected an '
     'integer'),
    (dict(minutes=1, skip_iters=-1), 'skip_iters: -1'),
    (dict(minutes=1, reserve_ratio=1.0), r'reserve_ratio: 1.0; expected a '
     r'number in \[0, 1\)'),
    (dict(minutes=1, warmup_iters=-3), 'warmup_iters: -3'),
    (dict(minutes=1, warmup_ratio=1.5), 'warmup_ratio: 1.5'),
    (dict(minutes=1, warmup_iters=10, warmup_ratio=0.1), 'not both'),
    (dict(minutes=1, warmup_start_factor=2.0), 'warmup_start_factor: 2.0'),
    (dict(minutes=1, eta_min_ratio=-0.1), 'eta_min_ratio: -0.1'),
    (dict(minutes=1, max_epochs=0), 'max_epochs: 0'),
    (dict(minutes=1, val_interval=0), 'val_interval: 0'),
])
def test_bad_arguments_raise(kw, match):
    from mm_instdisc.engine import check_budget_args
    with pytest.raises(ValueError, match=match):
        check_budget_args(**kw)


def test_loop_checks_its_arguments_and_refuses_a_param_scheduler(
        data_root, tmp_path):
    cfg = budget_cfg(data_root, tmp_path, 'bad', minutes=-1)
    with pytest.raises(ValueError, match='minutes: -1'):
        train(cfg, [])
    cfg = budget_cfg(data_root, tmp_path, 'sched', minutes=1)
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=2,
                                by_epoch=True)]
    with pytest.raises(ValueError, match='owns the lr schedule.*'
                       'apply_time_budget'):
        train(cfg, [])


# ------------------------------------------------------ apply_time_budget
CONFIGS_15MIN = sorted(glob.glob(os.path.join(ROOT, 'configs/**/*-15min_*.py'),
                                 recursive=True))


def test_the_15min_configs_are_found():
    assert len(CONFIGS_15MIN) >= 8
    assert any('npid_resnet18-w32s2_1xb256-bf16-cos-15min' in p
               for p in CONFIGS_15MIN)


@pytest.mark.parametrize('path', CONFIGS_15MIN,
                         ids=[os.path.basename(p) for p in CONFIGS_15MIN])
def test_apply_time_budget_on_shipped_configs(path):
    from mmengine.config import Config
    from mmpretrain.registry import LOOPS

    from mm_instdisc.engine import TimeBudgetTrainLoop, apply_time_budget
    cfg = Config.fromfile(path)
    before = cfg.pretty_text
    warmup, cosine = cfg.param_scheduler
    out = apply_time_budget(cfg, 15)
    assert cfg.pretty_text == before  # not modified
    assert out.param_scheduler is None
    t = out.train_cfg
    assert LOOPS.get(t.type) is TimeBudgetTrainLoop
    assert t.minutes == 15 and t.max_epochs is None
    assert t.warmup_iters == warmup.end == 200
    assert t.warmup_start_factor == warmup.start_factor
    assert t.eta_min_ratio == pytest.approx(
        cosine.eta_min / cfg.optim_wrapper.optimizer.lr)
    assert 'mm_instdisc.engine' in out.custom_imports.imports
    # a valid config file again
    again = Config.fromstring(out.pretty_text, '.py')
    assert again.train_cfg.type == 'TimeBudgetTrainLoop'


def test_apply_time_budget_npid_fields_and_checkpoints():
    from mmengine.config import Config

    from mm_instdisc.engine import apply_time_budget
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/npid/'
        'npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py'))
    out = apply_time_budget(cfg, 7.5, probe_iters=30, max_epochs=40,
                            val_interval=500, checkpoint_interval=200)
    assert dict(out.train_cfg) == dict(
        type='TimeBudgetTrainLoop', minutes=7.5, probe_iters=30,
        skip_iters=3, reserve_ratio=0.05, warmup_iters=200,
        warmup_start_factor=0.1, eta_min_ratio=pytest.approx(0.01),
        max_epochs=40, val_interval=500)
    ckpt = out.default_hooks.checkpoint
    assert (ckpt.type, ckpt.by_epoch, ckpt.interval, ckpt.max_keep_ckpts) \
        == ('CheckpointHook', False, 200, 2)
    with pytest.raises(ValueError, match='minutes: 0'):
        apply_time_budget(cfg, 0)


@pytest.mark.parametrize('sched,match', [
    ([dict(type='MultiStepLR', milestones=[3])], 'cannot convert'),
    ([dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=2),
      dict(type='CosineAnnealingLR', T_max=4, end=4)], 'by_epoch=True'),
    ([dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=200)],
     'no CosineAnnealingLR'),
    ([dict(type='CosineAnnealingLR', T_max=4, begin=2, end=6)],
     'whole run'),
])
def test_apply_time_budget_refuses_other_schedules(sched, match):
    from mmengine.config import Config

    from mm_instdisc.engine import apply_time_budget
    cfg = Config(dict(param_scheduler=sched,
                      optim_wrapper=dict(optimizer=dict(lr=0.1))))
    with pytest.raises(ValueError, match=match):
        apply_time_budget(cfg, 15)
