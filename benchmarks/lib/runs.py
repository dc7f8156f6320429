"""One resumable training run through ``tools/train.py``, the read-out of
the benchmarks, and the overrides of their small Fashion-MNIST runs."""
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Optional

#: The checkout the benchmarks run in (``tools/``, ``configs/``, ``data/``).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _checkout(path: str) -> str:
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{path} not found: the benchmarks run in a checkout of '
            f'mm_instdisc (tools/, configs/), not from a wheel; '
            f'benchmarks.lib is imported from {ROOT}.')
    return path


def run_tool(script: str, args: list, work_dir: str, threads: int,
             message: str) -> float:
    """Run ``tools/<script>`` with ``args`` in a subprocess limited to
    ``threads`` threads, resuming from ``work_dir``'s last checkpoint if it
    has one; returns the wall seconds."""
    cmd = [sys.executable, _checkout(osp.join(ROOT, 'tools', script)), *args]
    if osp.exists(osp.join(work_dir, 'last_checkpoint')):
        cmd.insert(3, '--resume')  # after the config, before --cfg-options
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    print(f'{message}: {" ".join(cmd)}', flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.time() - t


def train_run(name, cfg, work_dir, epochs, threads, note=''):
    """Pretrain ``cfg`` through tools/train.py in ``work_dir``.

    A run whose ``epoch_<epochs>.pth`` exists is not retrained (its recorded
    wall time is reused); an interrupted run resumes from its last
    checkpoint. Returns (final checkpoint, wall seconds).
    """
    os.makedirs(work_dir, exist_ok=True)
    final = osp.join(work_dir, f'epoch_{epochs}.pth')
    timing = osp.join(work_dir, 'wall_time.json')
    spent = 0.0
    if osp.exists(timing):
        with open(timing) as f:
            spent = json.load(f)['seconds']
    if osp.exists(final):
        print(f'[{name}] {final} exists: not retrained', flush=True)
        return final, spent
    cfg_path = osp.join(work_dir, 'config.py')
    cfg.work_dir = work_dir
    cfg.dump(cfg_path)
    spent += run_tool('train.py', [cfg_path, '--work-dir', work_dir],
                      work_dir, threads,
                      f'[{name}] training {epochs} epochs{note}')
    with open(timing, 'w') as f:
        json.dump(dict(seconds=spent), f)
    return final, spent


def sha256(path: str) -> str:
    """Hex digest of a file's bytes (``'none'`` stays ``'none'``)."""
    if path == 'none':
        return 'none'
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def same_setting(setting: dict, ckpt: str, epochs: int, seed: int,
                 config: Optional[str] = None) -> bool:
    """A result was made from this start (the same checkpoint bytes,
    wherever they lie now), epochs, seed and (when both name one) config."""
    if (setting.get('epochs'), setting.get('seed')) != (epochs, seed):
        return False
    if config is not None and setting.get('config') not in (None, config):
        return False
    old = setting.get('checkpoint')
    if old == 'none' or ckpt == 'none':
        return old == ckpt
    return osp.isfile(old) and sha256(old) == sha256(ckpt)


def setup_mmpretrain():
    """Register mm_instdisc's components, apply its compat fixes and make
    mmpretrain the default scope (for in-process model building)."""
    from mmengine.registry import init_default_scope

    import mm_instdisc.datasets  # noqa: F401
    import mm_instdisc.engine  # noqa: F401
    import mm_instdisc.evaluation  # noqa: F401
    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')


def last_metrics(work_dir, key):
    """The last logged row of mmengine's scalars that holds ``key`` (the
    last validation), or None."""
    found = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if key in row:
                    found = row
    return found


def parse_starts(parser, values, starts=None):
    """``--start NAME=CHECKPOINT`` values -> {name: checkpoint or 'none'};
    a malformed value or a missing file is a parser error naming it."""
    starts = dict(starts or {})
    for s in values:
        name, sep, ckpt = s.partition('=')
        if not sep or not name or not ckpt:
            parser.error(f'--start {s!r}: expected NAME=CHECKPOINT or '
                         'NAME=none')
        if ckpt != 'none' and not osp.isfile(ckpt):
            parser.error(f'--start {s!r}: checkpoint {ckpt!r} does not exist')
        starts[name] = ckpt
    return starts


def fmnist_run_config(config: str, *, data_root: str, train_size: int,
                      epochs: int, batch_size: int, seed: int,
                      lr: Optional[float] = None,
                      test_size: Optional[int] = None):
    """A Fashion-MNIST config (path relative to the checkout) with the
    overrides every small benchmark run shares: the first ``train_size``
    training images from ``data_root``, ``epochs`` epochs at ``batch_size``
    with cosine lr to 1% (``lr`` replaces the config's), the seed, a log
    line every 20 iterations and one checkpoint kept per epoch."""
    from mmengine.config import Config
    cfg = Config.fromfile(_checkout(osp.join(ROOT, config)))
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.train_dataloader.dataset.indices = train_size
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = batch_size
    cfg.test_dataloader.dataset.data_root = data_root
    if test_size is not None:
        cfg.test_dataloader.dataset.indices = test_size
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    lr = cfg.optim_wrapper.optimizer.lr
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, begin=0,
             end=epochs, eta_min=lr * 0.01)
    ]
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.logger.interval = 20
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=1)
    return cfg


def finetune_classifier(name: str, config: str, checkpoint: Optional[str],
                        work_dir: str, *, seed: int, threads: int,
                        epochs: Optional[int] = None,
                        data_root: Optional[str] = None,
                        test_size: Optional[int] = None) -> dict:
    """Fine-tune the classification ``config`` (path relative to the
    checkout) end to end from ``checkpoint`` (``backbone.*`` keys; None or
    ``'none'``: random init) in ``work_dir``; returns the last validation's
    ``top1``, the wall ``seconds`` and the ``epochs`` trained.

    ``seed`` seeds the run and, for a ``ClassBalancedSubset``, the labelled
    subset. With ``epochs`` the schedule becomes cosine over ``epochs``
    with one validation at the end and a checkpoint every epoch; without,
    the config's schedule runs unchanged. ``data_root`` and ``test_size``
    (the first test images) override the config's. A finished run is
    reused (``train_run``), so two benchmarks asking for the same run share
    it.
    """
    from mmengine.config import Config
    if checkpoint == 'none':
        checkpoint = None
    if checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'[{name}] fine-tuning needs the pretraining checkpoint '
            f'{checkpoint}, which does not exist')
    cfg = Config.fromfile(_checkout(osp.join(ROOT, config)))
    cfg.randomness = dict(seed=seed, deterministic=False)
    train_set = cfg.train_dataloader.dataset
    if train_set.get('type') == 'ClassBalancedSubset':
        train_set.seed = seed  # the labelled subset
        train_set = train_set.dataset
    cfg.model.backbone.init_cfg = None if checkpoint is None else dict(
        type='Pretrained', checkpoint=osp.abspath(checkpoint),
        prefix='backbone.')
    if data_root is not None:
        train_set.data_root = data_root
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        if data_root is not None:
            loader.dataset.data_root = data_root
        if test_size is not None:
            loader.dataset.indices = test_size
    if epochs is None:
        epochs = cfg.train_cfg.max_epochs
    else:
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                             val_interval=epochs)
        cfg.param_scheduler = [
            dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True,
                 begin=0, end=epochs)
        ]
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=1, max_keep_ckpts=1)
    _check_setting(name, work_dir, dict(
        checkpoint=osp.abspath(checkpoint) if checkpoint else 'none',
        config=config, epochs=epochs, seed=seed))
    _, seconds = train_run(f'{name} fine-tune', cfg, work_dir, epochs,
                           threads, f' from {checkpoint or "random init"}')
    row = last_metrics(work_dir, 'accuracy/top1')
    if row is None:
        raise RuntimeError(f'[{name}] fine-tuning in {work_dir} logged no '
                           'accuracy/top1 validation')
    print(f'[{name}] fine-tuning top-1 {row["accuracy/top1"]:.2f}',
          flush=True)
    return dict(top1=row['accuracy/top1'], seconds=seconds, epochs=epochs)


def _check_setting(name: str, work_dir: str, setting: dict) -> None:
    """A fine-tuning work dir is reused (or resumed) only for the run that
    made it: the same checkpoint bytes, config, epochs and seed, recorded in
    ``setting.json`` at its start (a work dir from before the record gets
    one now)."""
    path = osp.join(work_dir, 'setting.json')
    if osp.exists(path):
        with open(path) as f:
            old = json.load(f)
        if not same_setting(old, setting['checkpoint'], setting['epochs'],
                            setting['seed'], setting['config']):
            raise RuntimeError(
                f'[{name}] {work_dir} holds a fine-tuning of another setting '
                f'({old}), not of {setting}; remove the work dir or give '
                'another one')
        return
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(setting, f, indent=2)
