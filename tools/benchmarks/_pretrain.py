"""Shared by the pretraining benchmarks: one resumable training run."""
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), cfg_path,
           '--work-dir', work_dir]
    if osp.exists(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    print(f'[{name}] training {epochs} epochs{note}: {" ".join(cmd)}',
          flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    spent += time.time() - t
    with open(timing, 'w') as f:
        json.dump(dict(seconds=spent), f)
    return final, spent


def knn_and_probe(train, test, probe_epochs=10, seed=0):
    """Weighted kNN (cosine, tau 0.07, k = 20 and 200) and linear-probe
    top-1 (%) of (features, labels) pairs: the read-out of the benchmarks."""
    from mm_instdisc.evaluation import knn_evaluate, linear_probe
    acc = knn_evaluate(train[0], train[1], test[0], test[1], ks=(20, 200),
                       temperature=0.07)
    probe = linear_probe(train[0], train[1], test[0], test[1],
                         num_classes=10, epochs=probe_epochs, seed=seed)
    return dict(knn_k20=acc[20][1], knn_k200=acc[200][1],
                linear=probe['top1'], linear_train=probe['train_top1'])


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
    import glob
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
