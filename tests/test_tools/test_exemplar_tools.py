"""The Exemplar lightly example and the Exemplar benchmark run end to end."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, write_fashion_mnist


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, *args], capture_output=True,
                       text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.subprocess
def test_exemplar_lightly_example(data_root):
    out = run(['examples/exemplar_lightly.py', '--data-root', str(data_root),
               '--limit', '64', '--batch-size', '16', '--max-steps', '3',
               '--queue-len', '32'])
    line = [s for s in out.splitlines() if 'kNN top-1' in s]
    assert len(line) == 1
    # 3 steps x 16 labelled keys filled the 32-slot queue
    assert 'labelled queue slots 32/32' in line[0]


@pytest.mark.subprocess
def test_exemplar_benchmark_tiny_and_resumable(data_root, tmp_path):
    work, docs = tmp_path / 'w', tmp_path / 'bench.md'
    args = ['tools/benchmarks/exemplar_benchmark.py', '--data-root',
            str(data_root), '--train-size', '64', '--test-size', '32',
            '--batch-size', '16', '--epochs', '1', '--queue-len', '32',
            '--threads', '1', '--probe-epochs', '2', '--only', 'exemplar',
            '--work-dir', str(work), '--docs-out', str(docs)]
    out = run(args)
    assert '[exemplar] training 1 epochs on 64 images' in out
    assert (work / 'exemplar' / 'epoch_1.pth').exists()
    results = json.load(open(work / 'results.json'))
    assert set(results['rows']) == {'raw pixels', 'random init', 'exemplar'}
    for row in results['rows'].values():
        for key in ('knn_k20', 'knn_k200', 'linear'):
            assert 0 <= row[key] <= 100
    assert results['runs']['exemplar']['seconds'] > 0
    table = docs.read_text()
    assert '| Exemplar-v2 (labels filter negatives) |' in table
    assert '| raw pixels (784-d) |' in table
    # resumable: a finished run is not retrained (its wall time is kept)
    from mm_instdisc.benchmarks import train_run
    ckpt, seconds = train_run('exemplar', None, str(work / 'exemplar'),
                              epochs=1, threads=1)
    assert ckpt == str(work / 'exemplar' / 'epoch_1.pth')
    assert seconds == results['runs']['exemplar']['seconds']
