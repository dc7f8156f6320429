"""The Exemplar benchmark runs end to end (the Exemplar lightly example:
test_packaging.py)."""
import json

import pytest

from tests.helpers import run_tool, write_fashion_mnist


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def run(args):
    """The benchmark script in this process (its training runs are child
    processes of their own)."""
    r = run_tool(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.subprocess
def test_exemplar_benchmark_tiny_and_resumable(data_root, tmp_path):
    work, docs = tmp_path / 'w', tmp_path / 'bench.md'
    args = ['benchmarks/exemplar_benchmark.py', '--data-root',
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
    from benchmarks.lib import train_run
    ckpt, seconds = train_run('exemplar', None, str(work / 'exemplar'),
                              epochs=1, threads=1)
    assert ckpt == str(work / 'exemplar' / 'epoch_1.pth')
    assert seconds == results['runs']['exemplar']['seconds']
