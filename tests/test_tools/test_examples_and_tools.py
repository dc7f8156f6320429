"""tools/knn_eval.py, tools/test.py and the AdCo benchmark run end to end
(the lightly examples: test_packaging.py)."""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT, run_tool, tiny_npid_cfg, write_fashion_mnist


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def run(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, *args], capture_output=True,
                       text=True, timeout=600, env=env, cwd=ROOT, **kw)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def run_benchmark(args):
    """A benchmark script in this process (its training runs are child
    processes of their own)."""
    r = run_tool(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope='module')
def trained(data_root, tmp_path_factory):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    work = tmp_path_factory.mktemp('work')
    cfg = tiny_npid_cfg(data_root, work, epochs=1)
    Runner.from_cfg(cfg).train()
    cfg_path = work / 'tiny_npid.py'
    cfg.dump(str(cfg_path))
    return cfg_path, work / 'epoch_1.pth'


@pytest.mark.subprocess
def test_knn_eval_tool_prints_accuracies(trained, tmp_path):
    cfg, ckpt = trained
    out = run(['tools/knn_eval.py', str(cfg), str(ckpt), '--ks', '5', '20',
               '--out', str(tmp_path / 'knn.json')])
    rows = [s.split() for s in out.splitlines() if s.strip()[:2] in ('5 ', '20')]
    assert [r[0] for r in rows] == ['5', '20']
    for r in rows:
        assert 0 <= float(r[1]) <= float(r[2]) <= 100  # top-1 <= top-5
    bank = run_tool('tools/knn_eval.py', cfg, ckpt, '--use-bank')
    assert bank.returncode == 0, bank.stderr[-3000:]
    assert 'top-1' in bank.stdout


def test_knn_eval_rejects_foreign_checkpoint(trained, tmp_path):
    cfg, _ = trained
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'foo': torch.zeros(1)}), bad)
    r = run_tool('tools/knn_eval.py', cfg, bad)
    assert r.returncode != 0
    assert 'lacks' in r.stderr and 'model keys' in r.stderr


@pytest.mark.subprocess
def test_test_tool_runs_knn_metric(trained, tmp_path):
    cfg, ckpt = trained
    run(['tools/test.py', str(cfg), str(ckpt), '--work-dir', str(tmp_path),
         '--out', str(tmp_path / 'm.json')])
    import json
    metrics = json.load(open(tmp_path / 'm.json'))
    assert 0 <= metrics['knn/top1_k5'] <= 100


@pytest.mark.subprocess
def test_adco_benchmark_tiny(data_root, tmp_path):
    import json
    work = tmp_path / 'w'
    out = run_benchmark([
        'benchmarks/adco_benchmark.py', '--data-root', str(data_root),
        '--train-size', '64', '--batch-size', '16', '--epochs', '1',
        '--num-negatives', '32', '--threads', '1', '--only', 'adco', 'timing',
        '--timing-repeat', '2', '--random-seeds', '2', '--work-dir',
        str(work), '--no-docs'])
    assert '[adco] training 1 epochs on 64 images' in out
    res = json.load(open(work / 'results.json'))
    assert set(res['rows']) == {'raw pixels', 'random init', 'adco'}
    rand = res['rows']['random init']
    assert rand['seeds'] == [0, 1]
    assert rand['backbone_k20_min'] <= rand['backbone_k20'] <= rand[
        'backbone_k20_max']
    for key in ('backbone_k20', 'backbone_k200', 'embed_k20', 'embed_k200'):
        assert 0 <= res['rows']['adco'][key] <= 100
    t = res['timing']
    assert t['adco_step_s'] > 0 and t['mocov2_step_s'] > 0
    assert abs(t['ratio'] - t['adco_step_s'] / t['mocov2_step_s']) < 1e-9
    # a second call does not retrain
    out = run_benchmark([
        'benchmarks/adco_benchmark.py', '--data-root', str(data_root),
        '--train-size', '64', '--batch-size', '16', '--epochs', '1',
        '--num-negatives', '32', '--threads', '1', '--only', 'adco',
        '--work-dir', str(work), '--no-docs'])
    assert 'exists: not retrained' in out
