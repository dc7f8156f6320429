"""benchmarks/recipes_benchmark.py's detection table from result
files: each start is compared with random init at the seeds it has, and the
seeds still missing are listed."""
import json
from types import SimpleNamespace

import pytest

from tests.helpers import benchmark_script


@pytest.fixture(scope='module')
def recipes():
    with benchmark_script('recipes_benchmark') as module:
        yield module


def write(work_dir, seed, name, box):
    d = work_dir / 'detection' / f'seed{seed}' / name
    d.mkdir(parents=True)
    metrics = {k: box / 100 for k in ('coco/bbox_mAP', 'coco/bbox_mAP_50',
                                      'coco/segm_mAP', 'coco/segm_mAP_50')}
    (d / 'result.json').write_text(json.dumps(
        dict(setting=dict(seed=seed), seconds=60, **metrics)))


def row(lines, name):
    return next(line for line in lines if line.startswith(f'| {name} |'))


def test_detection_compares_with_random_init_at_the_same_seeds(recipes, tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, 'side_run', lambda args: False)  # the published table
    for seed, box in ((0, 30.0), (1, 50.0), (2, 50.0)):
        write(tmp_path, seed, 'random', box)
    write(tmp_path, 0, 'rotation', 31.0)  # above random's seed 0, below its mean
    for seed in (0, 1, 2):
        write(tmp_path, seed, 'npid', 42.0)  # below random's mean (43.3)
    lines = recipes.detection_section(SimpleNamespace(work_dir=str(tmp_path)))
    assert row(lines, 'rotation').endswith('| yes |')
    assert row(lines, 'npid').endswith('| **no** |')
    assert row(lines, 'npid').split(' | ')[1] == '3'
    missing = next(line for line in lines if line.startswith('Not run yet'))
    assert 'rotation (seeds 1, 2)' in missing
    assert 'npid' not in missing
    assert 'relloc (seeds 0, 1, 2)' in missing


def test_detection_without_random_init_at_a_seed_is_not_judged(recipes, tmp_path):
    write(tmp_path, 0, 'random', 30.0)
    write(tmp_path, 1, 'rotation', 10.0)
    lines = recipes.detection_section(SimpleNamespace(work_dir=str(tmp_path)))
    assert row(lines, 'rotation').endswith('| no random init at these seeds |')


def test_side_work_dir_does_not_overwrite_the_published_page(recipes, tmp_path):
    """A run with its own --work-dir (e.g. work_dirs/recipes_pretext) writes
    its report in that work dir unless --doc says otherwise; the default work
    dir writes benchmarks/reports/recipes.md."""
    import os.path as osp
    side = recipes.default_doc(SimpleNamespace(work_dir=str(tmp_path), doc=None))
    assert side.doc == osp.join(str(tmp_path), 'report', 'recipes.md')
    own = recipes.default_doc(SimpleNamespace(
        work_dir=osp.join(recipes.ROOT, 'work_dirs/recipes'), doc=None))
    assert own.doc == osp.join(recipes.ROOT, 'benchmarks/reports/recipes.md')
    given = recipes.default_doc(SimpleNamespace(work_dir=str(tmp_path), doc='x.md'))
    assert given.doc == 'x.md'


def test_side_work_dir_lists_only_the_missing_seeds_of_methods_it_ran(recipes, tmp_path):
    """work_dirs/recipes_pretext measures four methods: its report must not
    list the other recipes as "not run yet"."""
    for seed in (0, 1, 2):
        write(tmp_path, seed, 'random', 40.0)
    write(tmp_path, 0, 'rotation', 39.0)
    lines = recipes.detection_section(SimpleNamespace(work_dir=str(tmp_path)))
    missing = next(line for line in lines if line.startswith('Not run yet'))
    assert 'rotation (seeds 1, 2)' in missing
    assert 'relloc' not in missing and 'npid' not in missing
    assert recipes.side_run(SimpleNamespace(work_dir=str(tmp_path)))
    assert not recipes.side_run(SimpleNamespace(work_dir=recipes.ROOT + '/work_dirs/recipes'))


def test_detection_run_keeps_rows_saved_meanwhile(recipes, tmp_path, monkeypatch):
    """``--detection-seeds`` on a work dir whose pretraining is still running
    (rows saved to results.json during the fine-tunings) keeps those rows."""
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'rotation/0': {'knn_k200': 80.0}}))

    def pretraining_saves_meanwhile(args, seed):
        rows = json.loads(path.read_text())
        rows['maskint/1'] = {'knn_k200': 70.0}
        path.write_text(json.dumps(rows))

    reports = []
    monkeypatch.setattr(recipes, 'detection', pretraining_saves_meanwhile)
    monkeypatch.setattr(recipes, 'write_report', lambda args, results: reports.append(dict(results)))
    monkeypatch.setattr('sys.argv', ['recipes_benchmark.py', '--work-dir', str(tmp_path),
                                     '--detection-seeds', '0'])
    recipes.main()
    assert set(json.loads(path.read_text())) == {'rotation/0', 'maskint/1'}
    assert set(reports[0]) == {'rotation/0', 'maskint/1'}


def test_detection_starts_limits_the_fine_tunings(recipes, tmp_path, monkeypatch):
    """``--detection-starts rotation`` fine-tunes only from rotation's
    checkpoint (random init is deterministic and can run later); a start
    without a checkpoint of the seed is left out with a message."""
    ckpts = {m: tmp_path / f'{m}.pth' for m in ('rotation', 'maskint')}
    ckpts['rotation'].write_text('x')
    monkeypatch.setattr(recipes, 'recipe_checkpoint', lambda work_dir, m, seed: str(ckpts.get(m, '/no')))
    args = SimpleNamespace(work_dir=str(tmp_path), detection_starts=['rotation', 'maskint'])
    assert recipes.det_starts(args, 0) == {'rotation': str(ckpts['rotation'])}
    args.detection_starts = None
    assert set(recipes.det_starts(args, 0)) == {'random', 'rotation'}
    args.detection_starts = ['random']
    assert recipes.det_starts(args, 0) == {'random': 'none'}


def test_runs_sharing_a_work_dir_keep_each_others_rows(recipes, tmp_path):
    """Two processes on one results.json (one method each): each save writes
    only its own changes and takes in the other's; none is lost."""
    path = str(tmp_path / 'results.json')
    a, save_a = recipes.results_store(path)
    b, save_b = recipes.results_store(path)
    a['rotation/0'] = {'knn_k200': 80.0}
    save_a()
    b['maskint/0'] = {'knn_k200': 70.0}
    save_b()  # b read the file before a's row existed
    assert set(b) == {'rotation/0', 'maskint/0'}
    a['rotation/0']['finetune'] = 82.0
    save_a()
    assert json.load(open(path)) == {'rotation/0': {'knn_k200': 80.0, 'finetune': 82.0},
                                     'maskint/0': {'knn_k200': 70.0}}
    assert a == json.load(open(path))
    save_b()  # no change of b's: a's update is not reverted by b's stale copy
    assert json.load(open(path))['rotation/0']['finetune'] == 82.0


def test_wall_time_cell_says_when_runs_did_not_use_the_default_threads(recipes):
    """Runs of one process per method at 1 thread each take about twice as
    long as the published 2-thread runs: the report says so per row."""
    assert recipes.threads_note([{'wall_s': 60}, {'wall_s': 60, 'threads': 2}]) == ''
    assert recipes.threads_note([{'threads': 1}, {'threads': 1}]) == ' (1 thread a run)'
    assert recipes.threads_note([{'threads': 1}, {}]) == ' (1 / 2 threads a run)'


def test_figures_are_named_after_their_page(recipes, tmp_path):
    """A side run's page (--doc benchmarks/reports/recipes_pretext.md) wrote
    recipes.png beside it, over the published page's figure."""
    args = SimpleNamespace(doc=str(tmp_path / 'recipes_rotation_maskint.md'))
    assert recipes.figure(args) == 'recipes_rotation_maskint.png'
    assert recipes.figure(args, '_adco', path=True) == str(tmp_path / 'recipes_rotation_maskint_adco.png')
    assert recipes.figure(SimpleNamespace(doc='benchmarks/reports/recipes.md')) == 'recipes.png'


def test_side_page_names_only_what_it_ran(recipes, tmp_path):
    """A page of rotation runs alone neither carries SplitMask's note about
    its own runs nor heads its fine-tuning section with every recipe."""
    rot = dict(knn_k20=86.0, knn_k200=83.0, linear=86.0, wall_s=960.0, threads=1, finetune=81.5,
               finetune_wall_s=120.0)
    rnd = dict(knn_k20=79.0, knn_k200=75.0, linear=80.0)
    results = {'rotation/0': rot, 'rotation-random/0': rnd,
               'resnet18-w32s2-random/0': dict(finetune=79.0, finetune_wall_s=110.0)}
    args = SimpleNamespace(work_dir=str(tmp_path), doc=str(tmp_path / 'side.md'), seeds=[0],
                           budget_min=15.0)
    recipes.write_report(args, results)
    page = (tmp_path / 'side.md').read_text()
    assert 'SplitMask' not in page
    assert '## Fine-tuning read-out: rotation\n' in page
    assert '960' not in page and '16.0 min (1 thread a run)' in page
    assert (tmp_path / 'side.png').is_file()
