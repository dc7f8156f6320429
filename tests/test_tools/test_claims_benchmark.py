"""benchmarks/claims_benchmark.py on tiny data: NCE sweep, claim (1),
report, plots, resumability; the claims summary; argument errors."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, benchmark_script, run_tool, write_fashion_mnist

SCRIPT = 'benchmarks/claims_benchmark.py'


def run(*args):
    """The benchmark script in this process (its training runs are child
    processes of their own: tools/train.py through benchmarks.lib)."""
    return run_tool(SCRIPT, *args)


@pytest.fixture(scope='module')
def claims():
    with benchmark_script('claims_benchmark') as module:
        yield module


def tiny_args(tmp_path, *extra):
    data = write_fashion_mnist(tmp_path / 'fm', n_train=64, n_test=32)
    return ['--data-root', str(data), '--train-size', '64', '--test-size',
            '32', '--epochs', '1', '--ms', '4', '--work-dir',
            str(tmp_path / 'w'), '--docs-out',
            str(tmp_path / 'docs' / 'claims.md'), *extra]


@pytest.mark.subprocess
def test_nce_sweep_tiny(tmp_path):
    args = tiny_args(tmp_path, '--only', 'nce')
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.load(open(tmp_path / 'w' / 'results_nce.json'))
    assert set(res['rows']) == {'m=4', 'softmax'}
    for row in res['rows'].values():
        assert 0 <= row['knn_k20'] <= 100 and row['seconds'] > 0
        assert row['epochs'] == 1
    text = (tmp_path / 'docs' / 'claims.md').read_text()
    assert '| m=4 |' in text and '| softmax |' in text
    assert '(2) NCE accuracy rises with m' in text  # the claims summary
    assert (tmp_path / 'docs' / 'claims_nce_vs_m.png').stat().st_size > 0
    r = run(*args)  # finished runs are not retrained
    assert r.returncode == 0 and r.stdout.count('not retrained') == 2


@pytest.mark.subprocess
def test_param_section_tiny(tmp_path):
    """Claim (1): NPID softmax vs the parametric softmax, with raw-pixel,
    random-init and supervised rows, each read out by kNN and a probe."""
    args = tiny_args(tmp_path, '--only', 'param', '--pretrain-epochs', '1',
                     '--probe-epochs', '1')
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.load(open(tmp_path / 'w' / 'results_param.json'))['rows']
    assert set(rows) == {'raw pixels', 'random init', 'supervised',
                         'non-parametric softmax (NPID)',
                         'parametric softmax'}
    for name in ('non-parametric softmax (NPID)', 'parametric softmax'):
        assert set(rows[name]) >= {'embed', 'backbone'}
        assert 0 <= rows[name]['embed']['linear'] <= 100
        assert rows[name]['seconds'] > 0
    ck = rows['parametric softmax']['checkpoint']
    assert os.path.isfile(ck)
    import torch
    state = torch.load(ck, map_location='cpu',
                       weights_only=False)['state_dict']
    weights = [v for k, v in state.items() if k.startswith('head.')]
    assert weights and weights[0].shape[0] == 64  # one weight per image
    text = (tmp_path / 'docs' / 'claims.md').read_text()
    assert '(1) non-parametric softmax beats' in text
    assert '## Pretrained starts' in text


def row(knn, linear):
    return dict(knn_k20=knn, knn_k200=knn, linear=linear)


def synthetic_results():
    det = {n: {'coco/bbox_mAP': v, 'coco/bbox_mAP_50': 60., 'coco/segm_mAP':
               v - 5, 'coco/segm_mAP_50': 55., 'epochs': 3, 'seconds': 60.}
           for n, v in (('random init', 40.), ('npid', 41.), ('mocov2', 39.),
                        ('supervised', 39.5), ('exemplar-v2', 42.))}
    det['npid']['coco/bbox_mAP/seeds'] = [40., 42.]
    return {
        'pretrain': {'rows': {'npid': dict(config='c.py', epochs=2,
                                           images=64, seconds=3.)}},
        'param': {'rows': {
            'raw pixels': dict(pixels=row(81, 80), epochs=0, seconds=None),
            'random init': dict(embed=row(66, 70), backbone=row(67, 71),
                                epochs=0, seconds=None),
            'non-parametric softmax (NPID)': dict(
                embed=row(80, 70), backbone=row(75, 72), epochs=6,
                seconds=60.),
            'parametric softmax': dict(embed=row(60, 71),
                                       backbone=row(70, 60), epochs=6,
                                       seconds=70.)}},
        'nce': {'rows': {'m=1': dict(m=1, knn_k20=1., knn_k200=40.,
                                     epochs=6, seconds=1.),
                         'm=16': dict(m=16, knn_k20=1., knn_k200=60.,
                                      epochs=6, seconds=1.),
                         'm=256': dict(m=256, knn_k20=1., knn_k200=55.,
                                       epochs=6, seconds=1.),
                         'softmax': dict(m=None, knn_k20=1., knn_k200=70.,
                                         epochs=6, seconds=1.)}},
        'det': {'rows': det},
        'semisup': {'rows': {f'{n} / 1%': dict(
            start=n, fraction='1%', epochs=10, top1=v, seconds=5.)
            for n, v in (('random init', 50.), ('npid', 55.),
                         ('adco', 56.))}},
    }


def test_verdicts(claims):
    res = synthetic_results()
    measured = {c.split(' (paper')[0]: m
                for c, m, _ in claims.verdicts(res, None)}
    assert 'largest seed-to-seed range of one start is 2.0' in measured[
        '(3) pretraining beats random init for detection']
    assert 'random init: embed knn_k200 66.00' in measured[
        '(1) non-parametric softmax beats the parametric instance softmax']
    res = {
        'param': {'rows': {
            'non-parametric softmax (NPID)': dict(embed=row(80, 70),
                                                  backbone=row(75, 72)),
            'parametric softmax': dict(embed=row(60, 71),
                                       backbone=row(70, 60))}},
        'nce': {'rows': {'m=1': dict(m=1, knn_k200=40.),
                         'm=16': dict(m=16, knn_k200=60.),
                         'm=256': dict(m=256, knn_k200=55.),
                         'softmax': dict(m=None, knn_k200=70.)}},
        'det': {'rows': {n: {'coco/bbox_mAP': v} for n, v in (
            ('random init', 40.), ('npid', 41.), ('mocov2', 39.),
            ('supervised', 39.5), ('exemplar-v2', 42.))}},
        'semisup': {'rows': {f'{n} / 1%': dict(top1=v) for n, v in (
            ('random init', 50.), ('npid', 55.), ('adco', 56.))}},
    }
    got = {c.split(' (paper')[0]: h for c, _, h in claims.verdicts(res, None)}
    assert got['(1) non-parametric softmax beats the parametric instance '
               'softmax'] == 'partly (3 of 4)'
    assert got['(2) NCE accuracy rises with m and approaches the full '
               'softmax'].startswith('partly')
    assert got['(3) unsupervised pretraining beats supervised for '
               'detection'] == 'partly (npid)'
    assert got['(3) Exemplar-v2 beats MoCo v2 for detection'] == 'yes'
    assert got['(3) pretraining beats random init for detection'] == 'partly'
    assert got['(4) self-supervised starts beat random init with 1% of the '
               'labels'] == 'yes'
    res['nce']['rows']['m=256']['knn_k200'] = 65.
    got = {c: h for c, _, h in claims.verdicts(res, None)}
    assert got['(2) NCE accuracy rises with m and approaches the full '
               'softmax'] == 'yes'


@pytest.mark.subprocess
def test_bad_start_is_a_clear_error(tmp_path):
    r = run('--start', 'x', '--work-dir', str(tmp_path))
    assert r.returncode == 2 and 'expected NAME=CHECKPOINT' in r.stderr
    r = run('--start', 'npid=none', '--work-dir', str(tmp_path))
    assert r.returncode == 2 and "['npid']" in r.stderr


def test_report_and_plots_of_every_section(claims, tmp_path):
    import argparse
    args = argparse.Namespace(
        docs_out=str(tmp_path / 'bench.md'), quick=False, seed=0, threads=1,
        train_size=64, test_size=32, epochs=6, probe_epochs=1,
        pretrain_epochs=2, det_epochs=3, det_images=(20, 10),
        det_seeds=[0, 1], recipes=None, det_config='det.py',
        ft_cfgs={'1%': 'ft1.py', '10%': 'ft10.py'},
        network='ResNet-18 w16 (CIFAR stem)')
    res = synthetic_results()
    pngs = claims.plots(res, str(tmp_path), 'bench', args)
    assert sorted(os.path.basename(p) for p in pngs) == [
        'bench_det.png', 'bench_nce_vs_m.png', 'bench_param.png',
        'bench_semisup.png']
    assert all(os.path.getsize(p) > 0 for p in pngs)
    text = claims.report(res, args, pngs, 'python claims_benchmark.py')
    for title in ('## Which claims held', '## Pretrained starts',
                  '## (1) Non-parametric', '## (2) NPID', '## (3) Detection',
                  '## (4) Semi-supervised', '![bench_det.png](bench_det.png)'):
        assert title in text, title
    assert '| npid | 41.0 +- 1.4 (40.0 / 42.0) |' in text  # mean +- std (each seed)
    assert '| raw pixels | - | - | - | 81.00 | 81.00 | 80.00 | 0 | - |' in text


@pytest.mark.subprocess
def test_recipes_mode_errors(tmp_path):
    """--recipes names the missing recipe checkpoints and the command that
    makes them, and refuses the sections and options it does not take."""
    r = run('--recipes', '0', '--recipes-dir', str(tmp_path / 'none'),
            '--work-dir', str(tmp_path / 'w'))
    assert r.returncode == 2
    assert 'missing recipe checkpoints' in r.stderr
    assert str(tmp_path / 'none' / 'npid' / 'seed0' / 'epoch_14.pth') in r.stderr
    assert '--methods npid mocov2 adco exemplar rotation relloc jigsaw ' \
        'maskint --seeds 0' in r.stderr
    r = run('--recipes', '0', '--recipe-starts', 'jigsaw', '--recipes-dir',
            str(tmp_path / 'none'), '--work-dir', str(tmp_path / 'w'))
    assert r.returncode == 2
    assert str(tmp_path / 'none' / 'npid') not in r.stderr
    assert '--methods jigsaw --seeds 0' in r.stderr
    r = run('--recipes', '0', '--only', 'nce', '--work-dir', str(tmp_path))
    assert r.returncode == 2 and "--only ['nce']" in r.stderr
    r = run('--recipes', '0', '--quick', '--work-dir', str(tmp_path))
    assert r.returncode == 2 and 'cannot be combined' in r.stderr
    for extra in (['--seed', '1'], ['--det-seeds', '0', '1']):
        r = run('--recipes', '0', *extra, '--work-dir', str(tmp_path))
        assert r.returncode == 2 and 'do not apply' in r.stderr, extra


def test_recipes_report_shows_every_seed(claims, tmp_path):
    import argparse
    args = argparse.Namespace(
        docs_out=str(tmp_path / 'bench.md'), quick=False, seed=0, threads=1,
        test_size=10000, det_epochs=3, det_images=(2000, 500),
        det_seeds=[0, 1, 2], recipes=[0, 1, 2], det_config='det.py',
        ft_cfgs={'1%': 'ft1.py', '10%': 'ft10.py'}, network='w32s2',
        recipe_starts=['npid'], recipes_dir=str(tmp_path / 'recipes'))
    semi = {}
    for start, top1 in (('random init', [79.0, 80.0, 81.0]),
                        ('npid', [81.0, 82.0, 83.0])):
        for frac in ('1%', '10%'):
            semi[f'{start} / {frac}'] = dict(
                start=start, fraction=frac, epochs=10, seeds=[0, 1, 2],
                top1=sum(top1) / 3, seconds=60, **{'top1/seeds': top1})
    text = claims.report({'semisup': {'rows': semi}}, args, [], 'cmd')
    assert '| npid | 1% | 10 | 82.00 +- 1.00 (81.00 / 82.00 / 83.00) |' in text
    assert 'the 15-minute Fashion-MNIST recipes' in text
    # the header names the starts measured, not a fixed list
    assert '; npid; w32s2)' in text and 'AdCo' not in text
    assert '(4) self-supervised starts beat random init with 10% of the ' \
        'labels | npid 82.00 vs random init 80.00 | yes |' in text


@pytest.mark.subprocess
def test_det_and_semisup_sections_tiny(tmp_path):
    """(3) and (4) from random init on tiny data: a Mask R-CNN epoch on a
    composed set, 1% / 10% fine-tuning; a rerun reuses every result."""
    data = write_fashion_mnist(tmp_path / 'fm', n_train=1000, n_test=32)
    coco = tmp_path / 'coco'
    r = subprocess.run(
        [sys.executable, 'tools/dataset_converters/make_fmnist_coco.py',
         '--fmnist-root', str(data), '--out', str(coco), '--num-train', '4',
         '--num-val', '2', '--canvas', '64', '--scale', '0.8', '1.5',
         '--item-start', '800', '--item-end', '1000'],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    args = ['--data-root', str(data), '--train-size', '64', '--test-size',
            '32', '--only', 'det', 'semisup', '--no-pretrain-starts',
            '--det-epochs', '1', '--det-data-root', str(coco),
            '--ft-epochs', '1', '1', '--work-dir', str(tmp_path / 'w'),
            '--docs-out', str(tmp_path / 'docs' / 'claims.md')]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    det = json.load(open(tmp_path / 'w' / 'results_det.json'))['rows']
    assert set(det) == {'random init'}
    assert 0 <= det['random init']['coco/bbox_mAP'] <= 100
    assert det['random init']['seeds'] == [0]
    semi = json.load(open(tmp_path / 'w' / 'results_semisup.json'))['rows']
    assert set(semi) == {'random init / 1%', 'random init / 10%'}
    assert all(0 <= v['top1'] <= 100 for v in semi.values())
    text = (tmp_path / 'docs' / 'claims.md').read_text()
    assert '## (3) Detection' in text and '## (4) Semi-supervised' in text
    r = run(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Mask R-CNN 1 epochs from' not in r.stdout  # reused
    assert 'on 4 composed images' in text
    assert r.stdout.count('not retrained') == 2


def test_npid_against_the_pretext_tasks(claims):
    """Claim (5): NPID's start against each pretext task's, per transfer;
    absent without NPID or without a pretext start."""
    semi = {}
    for start, top1 in (('random init', 79.0), ('npid', 82.0),
                        ('rotation', 82.5), ('jigsaw', 80.0)):
        semi[f'{start} / 1%'] = dict(start=start, fraction='1%', top1=top1)
        semi[f'{start} / 10%'] = dict(start=start, fraction='10%',
                                      top1=top1 - 1)
    det = {'npid': 43.0, 'rotation': 41.0, 'masked intensity': 40.0,
           'random init': 40.2}
    res = {'semisup': {'rows': semi},
           'det': {'rows': {k: {'coco/bbox_mAP': v} for k, v in det.items()}}}
    got = {c: (m, h) for c, m, h in claims.verdicts(res, None)
           if c.startswith('(5)')}
    assert got['(5) instance discrimination (NPID) beats the pretext tasks '
               'for detection'] == (
        'npid 43.0 vs rotation 41.0, masked intensity 40.0 (box AP)', 'yes')
    assert got['(5) instance discrimination (NPID) beats the pretext tasks '
               'with 1% of the labels'] == (
        'npid 82.00 vs rotation 82.50, jigsaw 80.00 (top-1)',
        'partly (not rotation)')
    assert len(got) == 3
    del semi['npid / 1%'], semi['npid / 10%']
    got = [c for c, _, _ in claims.verdicts(res, None) if c.startswith('(5)')]
    assert got == ['(5) instance discrimination (NPID) beats the pretext '
                   'tasks for detection']


def test_queue_starts_need_a_queue_of_whole_batches(claims):
    import argparse
    args = argparse.Namespace(data_root='x', train_size=200, test_size=10,
                              pretrain_epochs=1, seed=0)
    for name in ('mocov2', 'exemplar-v2'):
        with pytest.raises(ValueError, match='--train-size 200: the '
                           f'{name} start keeps a queue of 100 keys'):
            claims.pretrain_config(name, args)
