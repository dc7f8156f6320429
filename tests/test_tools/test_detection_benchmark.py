"""benchmarks/detection_benchmark.py: argument errors and result parsing."""
import json

import pytest

from tests.helpers import run_tool

SCRIPT = 'benchmarks/detection_benchmark.py'


def run(*args):
    return run_tool(SCRIPT, *args)  # in this process


def test_bad_start_is_a_clear_error(tmp_path):
    r = run('--start', 'npid', '--work-dir', str(tmp_path))
    assert r.returncode == 2
    assert "--start 'npid': expected NAME=CHECKPOINT" in r.stderr
    missing = tmp_path / 'nope.pth'
    r = run('--start', f'npid={missing}', '--work-dir', str(tmp_path))
    assert r.returncode == 2
    assert 'does not exist' in r.stderr and str(missing) in r.stderr


def test_last_metrics_reads_the_last_validation(tmp_path):
    from benchmarks.lib import last_metrics
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    rows = [dict(loss=1.0, step=1),
            {'coco/bbox_mAP': 0.1, 'coco/bbox_mAP_50': 0.2,
             'coco/segm_mAP': 0.05, 'coco/segm_mAP_50': 0.1, 'step': 2},
            dict(loss=0.5, step=3),
            {'coco/bbox_mAP': 0.3, 'coco/bbox_mAP_50': 0.4,
             'coco/segm_mAP': 0.25, 'coco/segm_mAP_50': 0.35, 'step': 4}]
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in rows))
    assert last_metrics(str(tmp_path), 'coco/bbox_mAP')['coco/bbox_mAP'] == 0.3
    assert last_metrics(str(tmp_path / 'empty'), 'coco/bbox_mAP') is None


def test_results_are_matched_by_checkpoint_bytes_epochs_and_seed(tmp_path):
    import shutil

    from benchmarks.lib.detection import same_setting
    a = tmp_path / 'a.pth'
    a.write_bytes(b'weights')
    moved = tmp_path / 'elsewhere.pth'
    shutil.copy(a, moved)
    other = tmp_path / 'b.pth'
    other.write_bytes(b'other weights')
    setting = dict(checkpoint=str(a), epochs=3, seed=0)
    assert same_setting(setting, str(moved), 3, 0)  # same bytes
    assert not same_setting(setting, str(other), 3, 0)
    assert not same_setting(setting, str(moved), 2, 0)
    assert not same_setting(setting, str(moved), 3, 1)
    assert not same_setting(setting, 'none', 3, 0)
    none = dict(checkpoint='none', epochs=3, seed=0)
    assert same_setting(none, 'none', 3, 0)
    # a config, when both name one
    setting['config'] = 'configs/a.py'
    assert same_setting(setting, str(moved), 3, 0, 'configs/a.py')
    assert not same_setting(setting, str(moved), 3, 0, 'configs/b.py')
    a.unlink()  # the recorded checkpoint is gone: cannot be matched
    assert not same_setting(setting, str(moved), 3, 0)


def test_finetuning_work_dir_is_only_reused_for_its_own_setting(tmp_path):
    from benchmarks.lib.runs import _check_setting
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'weights')
    setting = dict(checkpoint=str(ckpt), config='configs/ft.py', epochs=3,
                   seed=0)
    _check_setting('x', str(tmp_path / 'w'), setting)  # recorded
    _check_setting('x', str(tmp_path / 'w'), dict(setting))  # same: reused
    for change in (dict(seed=1), dict(epochs=4), dict(config='other.py'),
                   dict(checkpoint='none')):
        with pytest.raises(RuntimeError, match='holds a fine-tuning of '
                           'another setting'):
            _check_setting('x', str(tmp_path / 'w'), {**setting, **change})
