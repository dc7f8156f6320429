"""benchmarks/elpv_benchmark.py: the fine-tuning network built from a
folder config, the report's judgement against random init, and a --quick
run on a tiny fake image folder (random 96 px grey PNGs in the four class
folders) that fills every row of the JSON and the markdown and is not
repeated when run again."""
import json
import math
import os
import os.path as osp
import re

import numpy as np
import pytest

from tests.helpers import benchmark_script

CLASSES = ('p0', 'p033', 'p067', 'p1')
PER_CLASS = dict(train=6, test=2, train_10pct=2)  # 40 images


@pytest.fixture(scope='module')
def bench():
    with benchmark_script('elpv_benchmark') as module:
        yield module


def fake_folder(root, seed=0):
    """prepare_elpv.py's layout with random 96 px grey PNGs."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    i = 0
    for split, n in PER_CLASS.items():
        for c in CLASSES:
            os.makedirs(osp.join(root, split, c))
            for _ in range(n):
                img = rng.integers(0, 256, (96, 96), dtype=np.uint8)
                Image.fromarray(img).save(osp.join(root, split, c,
                                                   f'{i:04d}.png'))
                i += 1
    return str(root)


def results_of(rows, methods=('npid', ), seeds=(0, 1), **settings):
    base = dict(data='d', size=96, minutes=10.0, epochs=None, batch_size=None,
                ft_epochs=10, ft_epochs_10pct=30, ft_batch_size=64,
                quick=False)
    base.update(settings)
    return dict(settings=base, rows=rows,
                meta=dict(methods=list(methods), seeds=list(seeds),
                          counts={}, majority_top1=50.0,
                          host=dict(flags=dict(avx512_bf16=False)),
                          commands=['python x.py']))


def readouts(value):
    return dict(knn_k20=value, knn_k200=value, linear=value, ft_full=value,
                ft_10pct=value)


def test_report_says_where_pretraining_does_not_beat_random_init(bench):
    rows = {'pixels': dict(knn_k20=60.0, knn_k200=60.0, linear=60.0)}
    for s, (good, bad, rnd) in enumerate(((70.0, 40.0, 50.0),
                                          (72.0, 44.0, 52.0))):
        rows[f'good/{s}'] = dict(arch='a-1', **readouts(good))
        rows[f'bad/{s}'] = dict(arch='a-1', **readouts(bad))
        rows[f'random-a-1/{s}'] = dict(arch='a-1', methods=['good', 'bad'],
                                       **readouts(rnd))
    text = '\n'.join(bench.report(results_of(rows, ('good', 'bad'))))
    assert '| good | 2 | 71.00 ± 1.41 | 70.00, 72.00 | yes |' in text
    assert '| bad | 2 | 42.00 ± 2.83 | 40.00, 44.00 | **no** |' in text
    assert ('**bad** does not beat random init on linear probe top-1: '
            '42.00 against 51.00') in text
    assert '**good** does not beat' not in text
    assert '| raw pixels | - | 60.00 |' in text
    assert 'Not above raw pixels: bad (weighted kNN top-1, k=20)' in text


def test_finetune_config_builds_a_four_class_classifier(bench, tmp_path):
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from benchmarks.lib import setup_mmpretrain
    from mm_instdisc.own_data import write_folder_config
    setup_mmpretrain()
    data = fake_folder(tmp_path / 'elpv')
    pre = Config.fromfile(write_folder_config(
        'rotation', osp.join(data, 'train'), str(tmp_path / 'pre'), size=32))
    path = bench.finetune_config(pre, osp.join(data, 'train_10pct'),
                                 osp.join(data, 'test'),
                                 str(tmp_path / 'ft.py'), batch_size=64)
    cfg = Config.fromfile(path)
    assert cfg.train_dataloader.batch_size == 8  # the 8 subset images
    assert cfg.model.backbone == pre.model.backbone  # the same network
    model = MODELS.build(cfg.model)
    x = torch.rand(2, 1, 32, 32) * 255
    assert model(x, mode='tensor').shape == (2, 4)


@pytest.mark.subprocess
def test_quick_run_fills_every_row_and_is_resumable(bench, tmp_path,
                                                    monkeypatch):
    data = fake_folder(tmp_path / 'elpv')
    work = str(tmp_path / 'work')
    argv = ['--quick', '--data', data, '--work-dir', work, '--methods',
            'rotation', '--size', '32', '--threads', '1']
    results = bench.main(argv)
    rows = results['rows']
    arch = rows['rotation/0']['arch']
    for key in ('rotation/0', f'random-{arch}/0'):
        for k, _, _ in bench.READOUTS:
            assert math.isfinite(rows[key][k]) and 0 <= rows[key][k] <= 100
    assert set(bench.FEATURE_KEYS) <= set(rows['pixels'])
    pre = rows['rotation/0']['pretrain']
    assert pre['epochs'] == 1 and pre['iters'] >= 1
    assert pre['command'].startswith('mm-instdisc-train rotation --data ')
    assert rows['rotation/0']['monitor']['history']  # the hook's record
    with open(osp.join(work, 'results.json')) as f:
        assert json.load(f)['rows'] == rows
    md = open(osp.join(work, 'elpv.md')).read()
    for _, title, _ in bench.READOUTS:
        heading = f'## {title[0].upper()}{title[1:]}\n'
        section = md.split(heading, 1)[1].split('\n## ', 1)[0]
        for start in ('rotation', 'random init'):
            line = next(ln for ln in section.splitlines()
                        if ln.startswith(f'| {start}'))
            assert re.search(r'\| \d+\.\d\d \|', line), line
    assert 'avx512_bf16' in md and '--quick' in md
    # run again: everything is there, so no process is started
    import subprocess

    def no_process(*args, **kwargs):
        raise AssertionError(f'rerun started {args[0][:3]}')

    monkeypatch.setattr(subprocess, 'run', no_process)
    again = bench.main(argv)
    assert again['rows'] == rows
