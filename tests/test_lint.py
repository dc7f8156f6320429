"""The lint CI runs: flake8 and isort (settings in setup.cfg), over the
package, tools, benchmarks, tests, examples and configs."""
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PATHS = ['mm_instdisc', 'tools', 'benchmarks', 'tests', 'examples', 'configs',
         'setup.py']


@pytest.mark.subprocess
@pytest.mark.parametrize('cmd', [['flake8'], ['isort', '--check-only',
                                              '--diff']])
def test_lint_clean(cmd):
    r = subprocess.run([sys.executable, '-m', *cmd, *PATHS], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, (f'{cmd[0]} found problems (settings in '
                               f'setup.cfg):\n{r.stdout}{r.stderr}'[-6000:])
