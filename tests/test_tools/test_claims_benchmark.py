"""tools/benchmarks/claims_benchmark.py on tiny data: NCE sweep, report,
plot, resumability; argument errors."""
import json
import os
import subprocess
import sys

from tests.helpers import ROOT, write_fashion_mnist

SCRIPT = os.path.join(ROOT, 'tools/benchmarks/claims_benchmark.py')


def run(*args):
    r = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                       text=True, timeout=600, cwd=ROOT,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    return r


def test_nce_sweep_tiny(tmp_path):
    data = write_fashion_mnist(tmp_path / 'fm', n_train=64, n_test=32)
    args = ['--data-root', str(data), '--train-size', '64', '--test-size',
            '32', '--epochs', '1', '--ms', '4', '--only', 'nce',
            '--work-dir', str(tmp_path / 'w'), '--docs-out',
            str(tmp_path / 'docs' / 'claims.md')]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.load(open(tmp_path / 'w' / 'results.json'))
    assert set(res['nce']) == {'m=4', 'softmax'}
    for row in res['nce'].values():
        assert 0 <= row['knn_k20'] <= 100 and row['seconds'] > 0
    text = (tmp_path / 'docs' / 'claims.md').read_text()
    assert '| m=4 |' in text and '| softmax |' in text
    assert (tmp_path / 'docs' / 'claims_nce_vs_m.png').stat().st_size > 0
    r = run(*args)  # finished runs are not retrained
    assert r.returncode == 0 and r.stdout.count('not retrained') == 2


def test_bad_start_is_a_clear_error(tmp_path):
    r = run('--start', 'x', '--work-dir', str(tmp_path))
    assert r.returncode == 2 and 'expected NAME=CHECKPOINT' in r.stderr
