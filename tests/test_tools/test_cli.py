"""The console scripts (``mm_instdisc.cli``) and the scripts of tools/ call
the programs of ``mm_instdisc.apis`` directly: each reaches its module's
``main`` with the command line (a shipped config's name resolved to its
path), and the scripts of tools/ are thin wrappers around the same
function. The programs themselves are run by the tests of each tool; the
console scripts from another directory by test_packaging.py."""
import importlib
import sys

import pytest

from mm_instdisc import cli, get_config
from tests.helpers import run_tool

CONFIG = 'npid/npid_resnet18-w16_1xb128-steplr-2e_fashion-mnist-10k'

# console script function, apis module, script in tools/, takes a CONFIG
PROGRAMS = [
    ('train', 'train', 'tools/train.py', True),
    ('test', 'test', 'tools/test.py', True),
    ('knn_eval', 'knn_eval', 'tools/knn_eval.py', True),
    ('convert', 'convert', 'tools/model_converters/selfsup_to_backbone.py',
     False),
    ('make_fmnist_coco', 'make_fmnist_coco',
     'tools/dataset_converters/make_fmnist_coco.py', False),
    (None, 'det_train', 'tools/det_train.py', False),
]


def _record_main(monkeypatch, module):
    """Replace ``mm_instdisc.apis.<module>.main`` by one that records its
    ``argv`` and ``sys.argv[1:]``; returns the list of calls."""
    calls = []

    def main(argv=None):
        calls.append((argv, sys.argv[1:]))

    monkeypatch.setattr(importlib.import_module(f'mm_instdisc.apis.{module}'),
                        'main', main)
    return calls


@pytest.mark.parametrize('script, module, tool, takes_config',
                         [p for p in PROGRAMS if p[0]])
def test_console_script_calls_the_package_main(monkeypatch, script, module,
                                               tool, takes_config):
    calls = _record_main(monkeypatch, module)
    monkeypatch.setattr(sys, 'argv', [f'mm-instdisc-{script}', CONFIG,
                                      '--work-dir', 'w'])
    monkeypatch.setenv('MM_INSTDISC_DATA', 'elsewhere')
    assert getattr(cli, script)() is None  # exit status 0
    first = get_config(CONFIG) if takes_config else CONFIG
    assert [argv for argv, _ in calls] == [[first, '--work-dir', 'w']]


@pytest.mark.parametrize('script, module, tool, takes_config', PROGRAMS)
def test_tools_script_is_a_thin_wrapper(monkeypatch, script, module, tool,
                                        takes_config):
    calls = _record_main(monkeypatch, module)
    r = run_tool(tool, 'CONFIG', '--work-dir', 'w')
    assert r.returncode == 0, r.stderr
    assert calls == [(None, ['CONFIG', '--work-dir', 'w'])]


def test_package_mains_take_their_command_line_as_a_list():
    """``main(argv)`` parses ``argv``, not ``sys.argv``: ``--help`` given
    as a list exits with the program's help."""
    for module in {p[1] for p in PROGRAMS}:
        mod = importlib.import_module(f'mm_instdisc.apis.{module}')
        with pytest.raises(SystemExit) as e:
            mod.main(['--help'])
        assert e.value.code == 0, module


@pytest.mark.parametrize('extra,loop,minutes,cap', [
    ([], 'TimeBudgetTrainLoop', 13, 14),  # the config's own budget
    (['--minutes', '4'], 'TimeBudgetTrainLoop', 4, None),
    (['--cfg-options', 'time_budget_minutes=None'], 'EpochBasedTrainLoop',
     None, None),
])
def test_recipe_budget_field(tmp_path, extra, loop, minutes, cap):
    """A 15-minute recipe's ``time_budget_minutes`` makes our launcher end
    after its epochs or within the budget; ``--minutes`` replaces it (no
    epoch cap); None runs the fixed epochs."""
    from mmengine.config import Config

    from mm_instdisc.apis.train import merge_args, parse_args
    path = get_config('npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_'
                      'fashion-mnist')
    cfg = merge_args(Config.fromfile(path), parse_args(
        [path, '--work-dir', str(tmp_path)] + extra))
    assert cfg.train_cfg.type == loop
    if loop == 'TimeBudgetTrainLoop':
        assert cfg.train_cfg.minutes == minutes
        assert cfg.train_cfg.get('max_epochs') == cap
        assert cfg.param_scheduler is None
    else:
        assert cfg.train_cfg.max_epochs == 14
