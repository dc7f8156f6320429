"""Suite-wide settings: the checkout on sys.path, one thread per process,
the ``slow`` tier, the order tests are handed to the xdist workers, a
check that every test starting a process says so with its marker, and two
waits of mmengine's that the in-process tests skip.

Tiers (markers registered in pytest.ini):

* ``learning``, ``dist`` and ``subprocess`` tests are ``slow`` too;
* ``pytest -m "not slow"`` is the quick tier, the whole suite is
  ``pytest tests`` (both on every core, pytest-xdist).
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault('OMP_NUM_THREADS', '1')

SLOW_KINDS = ('learning', 'dist', 'subprocess')
PROCESS_KINDS = ('dist', 'subprocess')
# probes that mmengine's Runner and torch run themselves (environment
# report, git hash of the checkpoint meta): milliseconds, not our processes
PROBES = {'gcc', 'g++', 'cc', 'c++', 'git', 'nvcc', 'nvidia-smi', 'uname',
          'ldconfig', 'lscpu'}


def _cost_rank(item):
    """Longest first, so that the workers do not end on one long test:
    learning runs, then process starts, then other slow tests, then the
    rest (each group in collection order)."""
    names = {m.name for m in item.iter_markers()}
    for rank, kind in enumerate(('learning', 'dist', 'subprocess', 'slow')):
        if kind in names:
            return rank
    return len(SLOW_KINDS) + 1


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(k) for k in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_cost_rank)  # stable: the same order on every worker


@pytest.fixture(autouse=True, scope='session')
def _no_mmengine_waits():
    """Two costs of mmengine that test nothing of ours, skipped in this
    process (child processes of the tools keep them):

    * ``IterBasedTrainLoop`` sleeps 2 s each time its data loader restarts
      (a guard against worker deadlocks; the tests' loaders have no
      workers, and their tiny data sets restart every few iterations);
    * ``Config.pretty_text`` formats the config with yapf (0.3 s a call),
      at every checkpoint and log: the text stays valid Python, unformatted.
    """
    try:
        import mmengine.config.config as config
        import mmengine.runner.loops as loops
    except ImportError:  # the OpenMMLab-free core
        yield
        return
    import time
    import types
    loops_time, format_code = loops.time, config.FormatCode
    loops.time = types.SimpleNamespace(
        **{k: getattr(time, k) for k in dir(time) if not k.startswith('_')})
    loops.time.sleep = lambda seconds: None
    config.FormatCode = lambda text, **kwargs: (text, False)
    yield
    loops.time, config.FormatCode = loops_time, format_code


@pytest.fixture(autouse=True)
def _process_starts_are_marked(request, monkeypatch):
    """A test that starts a child process (subprocess, multiprocessing,
    torch's spawn) must be marked ``dist`` or ``subprocess``: the quick
    tier (-m "not slow") relies on it. Fails such a test, naming what it
    started. (Fixtures of a wider scope, set up before this one, are not
    watched.)"""
    if any(request.node.get_closest_marker(k) for k in PROCESS_KINDS):
        yield
        return
    import multiprocessing.process
    started = []
    popen_init = subprocess.Popen.__init__
    process_start = multiprocessing.process.BaseProcess.start

    def watched_popen(self, args, *a, **kw):
        line = args if isinstance(args, str) else ' '.join(map(str, args))
        if os.path.basename(line.split(' ', 1)[0]) not in PROBES:
            started.append(line)
        popen_init(self, args, *a, **kw)

    def watched_start(self):
        started.append(f'multiprocessing {self.name}')
        return process_start(self)

    monkeypatch.setattr(subprocess.Popen, '__init__', watched_popen)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, 'start',
                        watched_start)
    yield
    if started:
        pytest.fail(f'{request.node.nodeid} started processes but is not '
                    f'marked dist or subprocess (add @pytest.mark.dist / '
                    f'@pytest.mark.subprocess): {started[:3]}',
                    pytrace=False)
