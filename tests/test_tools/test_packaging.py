"""What a pip user gets: the OpenMMLab-free door, the wheel's configs, tools
and console scripts, and training from outside the checkout."""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT, benchmark_script, write_fashion_mnist

BLOCK = '''
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('mmengine', 'mmcv', 'mmpretrain', 'mmdet'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, _Block())
'''
NPID_10K = 'npid/npid_resnet18-w16_1xb128-steplr-2e_fashion-mnist-10k'


def run(args, cwd, env=None, timeout=600):
    # no PYTHONPATH of ours: what an installed package sees
    full = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    full.update(OMP_NUM_THREADS='1', **(env or {}))
    env = full
    r = subprocess.run(args, capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fashion_mnist',
                               n_train=64, n_test=32)


@pytest.mark.subprocess
def test_core_imports_without_openmmlab(tmp_path):
    out = run([sys.executable, '-c', BLOCK + '''
import mm_instdisc, mm_instdisc.modules, mm_instdisc.datasets
from mm_instdisc.datasets import FashionMNIST, read_idx
print(mm_instdisc.get_config('npid/npid_resnet18-w16_1xb128-steplr-2e_fashion-mnist-10k'))
print(len(mm_instdisc.list_configs('*')))
assert not any(m.split('.')[0] in ('mmengine', 'mmpretrain') for m in sys.modules)
'''], cwd=tmp_path)
    assert 'npid_resnet18-w16_1xb128-steplr-2e_fashion-mnist-10k.py' in out


def _check_npid(out):
    assert 'kNN top-1 vs bank' in out


def _check_adco(out):
    # 16 negatives = 2 steps of initialisation from keys, then 3 ascent steps
    assert 'backbone kNN top-1' in out
    line = [s for s in out.splitlines() if s.startswith('negatives:')][0]
    assert '16 initialised from keys' in line
    assert float(line.split()[-1]) > 0  # the ascent moved them


def _check_exemplar(out):
    line = [s for s in out.splitlines() if 'kNN top-1' in s]
    assert len(line) == 1
    # 3 steps x 16 labelled keys filled the 32-slot queue
    assert 'labelled queue slots 32/32' in line[0]


def _check_splitmask(out):
    assert 'step    2' in out and 'done' in out


@pytest.mark.subprocess
@pytest.mark.parametrize('example, args, check', [
    ('npid_lightly.py', ['--limit', '64', '--batch-size', '16',
                         '--max-steps', '3', '--num-negatives', '32'],
     _check_npid),
    ('adco_lightly.py', ['--limit', '64', '--batch-size', '8',
                         '--num-negatives', '16', '--max-steps', '5'],
     _check_adco),
    ('exemplar_lightly.py', ['--limit', '64', '--batch-size', '16',
                             '--queue-len', '32', '--max-steps', '3'],
     _check_exemplar),
    ('splitmask_plain.py', ['--limit', '64', '--batch-size', '8',
                            '--steps', '3'], _check_splitmask),
])
def test_lightly_examples_run_without_openmmlab(data_root, tmp_path, example,
                                                args, check):
    """Each example of examples/ trains with OpenMMLab blocked (the plain
    PyTorch door) and prints what it should."""
    path = os.path.join(ROOT, 'examples', example)
    check(run([sys.executable, '-c', BLOCK + f'''
import runpy
sys.argv = [{path!r}, '--data-root', {str(data_root)!r}] + {args!r}
sys.path.insert(0, {os.path.dirname(path)!r})
runpy.run_path({path!r}, run_name='__main__')
'''], cwd=tmp_path))


def _build_wheel(folder):
    """A wheel built from a copy of the checkout's files (building in place
    would rewrite mm_instdisc/.mim of the editable install)."""
    src = folder / 'src' / 'mm_instdisc'
    top = {'.venv', '.git', 'data', 'work_dirs', 'build', 'dist'}

    def ignore(path, names):  # the checkout's data/ only
        return [n for n in names
                if (os.path.samefile(path, ROOT) and n in top)
                or n in ('__pycache__', '.mim')
                or n.endswith(('.egg-info', '.pth', '.pyc'))]

    shutil.copytree(ROOT, src, ignore=ignore)
    out = folder / 'dist'
    out.mkdir()
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
         '--no-build-isolation', str(src), '-w', str(out)], cwd=out)
    wheels = glob.glob(str(out / 'mm_instdisc-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel, built once for the session (shared by the xdist workers)."""
    from tests.helpers import shared_result
    return shared_result(tmp_path_factory, 'wheel', _build_wheel)[1]


@pytest.mark.subprocess
def test_wheel_carries_configs_tools_and_scripts(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry = [n for n in names if n.endswith('entry_points.txt')]
        scripts = z.read(entry[0]).decode()
        meta = z.read([n for n in names if n.endswith('METADATA')][0]).decode()
    assert f'mm_instdisc/.mim/configs/{NPID_10K}.py' in names
    assert 'mm_instdisc/.mim/configs/_base_/default_runtime.py' in names
    assert 'mm_instdisc/.mim/tools/train.py' in names
    assert 'mm_instdisc/datasets/fashion_mnist_reader.py' in names
    assert 'mm_instdisc/.mim/tools/model_converters/selfsup_to_backbone.py' \
        in names
    # the experiments (benchmarks/) stay in the checkout; tools/benchmarks/
    # ships its shell launchers only
    research = [n for n in names
                if 'benchmarks' in n.split('/')[:2]  # a benchmarks package
                or n.endswith('_benchmark.py')
                or (n.startswith('mm_instdisc/.mim/tools/benchmarks/')
                    and n.endswith('.py'))]
    assert not research, research
    assert 'mm_instdisc/datasets/composed_coco.py' in names
    for s in ('mm-instdisc-train', 'mm-instdisc-test', 'mm-instdisc-knn-eval',
              'mm-instdisc-convert', 'mm-instdisc-make-fmnist-coco',
              'mm-instdisc-export', 'mm-instdisc-det-train',
              'mm-instdisc-cls-train'):
        assert s in scripts
    # ranges, not the pins of the tested set; the core needs torch only
    assert 'Requires-Dist: torch>=2.1' in meta
    assert 'torch==' not in meta and 'mmcv==' not in meta
    assert "Provides-Extra: det" in meta and "Provides-Extra: lightly" in meta


@pytest.mark.subprocess
def test_installed_wheel_trains_from_anywhere(wheel, data_root, tmp_path):
    """pip install the wheel into a fresh target, then from another
    directory: the console script and mmpretrain's own tools/train.py train
    a 10k config for a few iterations (data from MM_INSTDISC_DATA)."""
    target = tmp_path / 'site'
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--target', str(target), wheel], cwd=tmp_path)
    env = dict(PYTHONPATH=str(target),
               MM_INSTDISC_DATA=str(os.path.dirname(data_root)))
    work = tmp_path / 'elsewhere'
    work.mkdir()
    opts = ['--cfg-options', 'train_dataloader.dataset.indices=32',
            'train_dataloader.batch_size=16', 'train_cfg.max_epochs=1',
            'model.bank_size=32', 'model.head.loss.num_negatives=8',
            'val_dataloader.dataset.indices=16']
    out = run([sys.executable, '-c', 'import mm_instdisc, sys; '
               'print(mm_instdisc.__file__); print(mm_instdisc.get_config('
               f'{NPID_10K!r}))'], cwd=work, env=env)
    assert str(target) in out and '.mim/configs' in out
    script = target / 'bin' / 'mm-instdisc-train'
    run([sys.executable, str(script), NPID_10K, '--work-dir', 'w_ours']
        + opts, cwd=work, env=env)
    assert (work / 'w_ours' / 'epoch_1.pth').exists()
    # a folder of mixed images (RGB JPEGs, grey / 16-bit / RGBA PNGs, mixed
    # sizes), through the installed console script: config from the data
    from tests.test_datasets.test_image_folder import write_mixed_folder
    for part in range(2):
        write_mixed_folder(tmp_path / 'imgs' / f'p{part}', seed=part)
    run([sys.executable, str(script), 'npid', '--data',
         str(tmp_path / 'imgs'), '--epochs', '1', '--size', '32',
         '--batch-size', '8', '--workers', '0', '--work-dir', 'w_folder'],
        cwd=work, env=env)
    for name in ('epoch_1.pth', 'label_free_monitor.png'):
        assert (work / 'w_folder' / name).is_file(), name
    import mmpretrain
    mmp_train = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim',
                             'tools', 'train.py')
    if not os.path.isfile(mmp_train):
        pytest.skip(f'mmpretrain ships no {mmp_train}')
    cfg = os.path.join(target, 'mm_instdisc', '.mim', 'configs',
                       NPID_10K + '.py')
    run([sys.executable, mmp_train, cfg, '--work-dir', 'w_mmp'] + opts,
        cwd=work, env=env)
    assert (work / 'w_mmp' / 'epoch_1.pth').exists()


def test_metafile_lists_every_shipped_config():
    import yaml

    import mm_instdisc
    with open(os.path.join(ROOT, 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    listed = sorted(m['Config'][len('configs/'):] for m in models)
    assert listed == mm_instdisc.list_configs('*'), (
        'metafile.yml is stale: run python benchmarks/write_metafile.py')
    for m in models:
        assert m['Algorithm'] != '?' and m['Data'], m
        assert os.path.isfile(os.path.join(ROOT, m['Docs'])), m
    recipes = [m for m in models if '15min' in m['Name']]
    assert recipes and all('Results' in m for m in recipes
                           if m['Name'].startswith('npid')), recipes


def test_results_page_is_written_from_the_metafile():
    """docs/results.md is what benchmarks/write_results.py writes from the
    committed metafile.yml, and the metafile's recipe results and claims are
    what benchmarks/write_metafile.py reads from benchmarks/reports/."""
    import yaml
    with open(os.path.join(ROOT, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    with benchmark_script('write_results') as wr:
        page = wr.render(meta)
    with open(os.path.join(ROOT, 'docs', 'results.md'),
              encoding='utf-8') as f:
        assert f.read() == page, (
            'docs/results.md is stale: run python benchmarks/write_results.py')
    with benchmark_script('write_metafile') as wm:
        store = {}
        for m in meta['Models']:
            if 'Recipe' in m:
                assert (m['Metadata'], m['Results']) == wm.recipe_results(
                    m['Recipe']), ('metafile.yml is stale: run python '
                                   'benchmarks/write_metafile.py')
                store[m['Recipe']] = m['Results']
        assert sorted(store) == sorted(wm.METHODS)
        assert meta['Claims'] == wm.claims(store)
        assert wm.held([{'A value': 2, 'B value': 1}]) == 'yes'
        assert wm.held([{'A value': 1, 'B value': 2}]) == 'no'
        assert wm.held([{'A value': 2, 'B value': 1},
                        {'A value': 1, 'B value': 1}]) == 'partly (1 of 2)'
    npid = next(m for m in meta['Models'] if m.get('Recipe') == 'npid')
    knn = npid['Results'][0]
    assert f"{knn['Metrics']['kNN top-1 k=200']:.2f}" in page
    assert knn['Baselines']['random init']['kNN top-1 k=200'] < \
        knn['Metrics']['kNN top-1 k=200']


def test_report_cells_are_read_as_numbers(tmp_path):
    with benchmark_script('write_metafile'):
        from benchmarks.lib import reports
    cell = '40.20 +- 0.95 (39.2 / 41.1 / 40.3)'
    assert reports.number(cell) == (40.2, 0.95)
    assert reports.number('**81.20**') == (81.2, None)
    assert reports.seeds_of('40.20 +- 0.95 (39.2 / 41.1 / 40.3)') == 3
    with pytest.raises(ValueError, match="'-'"):
        reports.number('-')
    page = tmp_path / 'r.md'
    page.write_text('# t\n\n| a | b |\n|---|---|\n| x | 1 |\n| y | 2 |\n\n'
                    '## S one\n\n| a | c |\n|---|---|\n| x | 3 |\n')
    assert reports.find_row(str(page), '', 'a', 'y') == {'a': 'y', 'b': '2'}
    assert reports.find_row(str(page), 'S', 'a', 'x') == {'a': 'x', 'c': '3'}
    with pytest.raises(KeyError, match="'z'"):
        reports.find_row(str(page), '', 'a', 'z')


@pytest.mark.subprocess
def test_mmpretrain_train_from_outside_the_checkout(data_root, tmp_path):
    """The set-up venv (editable install), no PYTHONPATH, another working
    directory: mmpretrain's own tools/train.py trains our 10k NPID config."""
    import mmpretrain

    import mm_instdisc
    mmp_train = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim',
                             'tools', 'train.py')
    if not os.path.isfile(mmp_train):
        pytest.skip(f'mmpretrain ships no {mmp_train}')
    run([sys.executable, mmp_train, mm_instdisc.get_config(NPID_10K),
         '--work-dir', 'w', '--cfg-options',
         'train_dataloader.dataset.indices=32',
         'train_dataloader.batch_size=16', 'train_cfg.max_epochs=1',
         'model.bank_size=32', 'model.head.loss.num_negatives=8',
         'val_dataloader.dataset.indices=16'], cwd=tmp_path,
        env=dict(MM_INSTDISC_DATA=str(os.path.dirname(data_root))))
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()
