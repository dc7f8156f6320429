"""Write metafile.yml, the one store of measured results: every shipped
config with its algorithm, data and guide; for the 15-minute Fashion-MNIST
recipes their measured results beside random init and raw pixels; and the
papers' claims as measured here (top-level ``Claims``).

    python benchmarks/write_metafile.py && python benchmarks/write_results.py

Every number is read from the report pages in ``benchmarks/reports/`` that
the benchmark scripts wrote (``RUNS`` names, for each recipe, the pages of
the run that measured it and that run's host); ``write_results.py`` then
writes ``docs/results.md`` from this file alone.
``mm_instdisc.list_configs`` lists the same configs.
"""
import argparse
import json
import os
import os.path as osp
import re

from _path import ROOT  # first: sys.path gets the checkout

from benchmarks.lib.recipes import (DET_EPOCHS, FINETUNE, METHODS,
                                    RECIPE_DET_CONFIG)
from benchmarks.lib.reports import (find_row, number, read_tables,
                                    section_text, seeds_of)

ALGORITHMS = {
    'npid': ('NPID', 'Wu et al., CVPR 2018', 'docs/npid.md'),
    'adco': ('AdCo', 'Hu et al., CVPR 2021', 'docs/adco.md'),
    'exemplar': ('Exemplar', 'Zhao et al., ICLR 2021', 'docs/exemplar.md'),
    'mocov2': ('MoCo v2 (mmpretrain MoCo)', 'Chen et al., 2020',
               'docs/results.md'),
    'splitmask': ('SplitMask', 'El-Nouby et al., 2021', 'docs/splitmask.md'),
    'supervised': ('Supervised baseline', '-', 'docs/exemplar.md'),
    'benchmarks': ('Transfer', '-', 'docs/transfer.md'),
}
# configs/pretext/: one directory, five tasks (by the file name's start)
PRETEXT = {
    'rotation-pred': ('Rotation prediction', 'Gidaris et al., ICLR 2018',
                      'docs/pretext.md'),
    'relative-loc': ('Relative patch location', 'Doersch et al., ICCV 2015',
                     'docs/pretext.md'),
    'jigsaw': ('Jigsaw puzzles', 'Noroozi and Favaro, ECCV 2016',
               'docs/pretext.md'),
    'colorization': ('Colorization', 'Zhang et al., ECCV 2016',
                     'docs/pretext.md'),
    'masked-intensity': ("Colorization's recipe for grey images",
                         'Zhang et al., ECCV 2016', 'docs/pretext.md'),
}
REPORTS = 'benchmarks/reports/'
# The runs that measured the shipped recipes: the recipes benchmark's page
# (read-outs, 1%-label fine-tuning, Mask R-CNN) and the claims benchmark's
# page of the same checkpoints (10% of the labels), with that run's host as
# the pages (or, where they do not record it, the guide named) say.
RUNS = {
    'recipes': dict(
        recipes='recipes.md', claims='claims_recipes.md',
        host='2-core CPU host; pretraining 2 threads a run, Mask R-CNN 1 '
        'thread a fine-tuning (two side by side), 10% of the labels 2 threads; '
        'bf16 autocast as the configs ask, the pages do not record whether '
        'the host had bf16 kernels'),
    'pretext': dict(
        recipes='recipes_pretext.md', claims='claims_pretext.md',
        host="2-core CPU host about 1.5x slower a step than recipes.md's; "
        'pretraining 2 threads a run, fine-tunings 1 thread; bf16 autocast '
        'as the configs ask, bf16 kernels not recorded'),
    'rotmask': dict(
        recipes='recipes_rotation_maskint.md',
        claims='claims_rotation_maskint.md',
        host='2-core CPU host with bf16 kernels (2026-12-01, '
        'docs/pretext.md); two pretrainings of 1 thread side by side, '
        'fine-tunings 1 thread'),
    'maskint2x2': dict(
        recipes='recipes_maskint2x2.md', claims='claims_maskint2x2.md',
        host='2-core CPU host with bf16 kernels (2026-12-01, '
        'docs/pretext.md); 1 thread a run beside other work'),
}
# recipe -> the run whose pages hold its current numbers; the rows of
# earlier runs that these replace are listed in benchmarks/reports/README.md
RECIPE_RUN = {'npid': 'recipes', 'mocov2': 'recipes', 'adco': 'recipes',
              'exemplar': 'recipes', 'splitmask': 'recipes',
              'rotation': 'rotmask', 'relloc': 'pretext', 'jigsaw': 'pretext',
              'maskint': 'maskint2x2'}
# recipe -> its name in the claims benchmark's tables
CLAIMS_NAME = {'exemplar': 'exemplar-v2', 'relloc': 'relative location',
               'maskint': 'masked intensity'}
RECIPE_OF_CONFIG = {cfg: method for method, (cfg, _, _) in METHODS.items()}
KNN = (('kNN k=20', 'kNN top-1 k=20'), ('kNN k=200', 'kNN top-1 k=200'),
       ('linear probe', 'Linear probe top-1'))


def data_of(name):
    for key, data in (('fashion-mnist-10k', 'Fashion-MNIST (10k train)'),
                      ('fashion-mnist', 'Fashion-MNIST'),
                      ('fmnist-coco', 'composed Fashion-MNIST COCO set'),
                      ('in1k', 'ImageNet-1k'), ('in21k', 'ImageNet-21k'),
                      ('cifar10', 'CIFAR-10'),
                      ('coco', 'COCO'), ('custom', 'custom images')):
        if key in name:
            return data
    return 'see config'


def _metrics(row, columns):
    """{metric: mean}, {metric: std} of a report row's cells."""
    means, stds = {}, {}
    for column, metric in columns:
        means[metric], std = number(row[column])
        if std is not None:
            stds[metric] = std
    return means, stds


def _result(task, dataset, config, epochs, source, row, base, columns,
            seeds=None):
    means, stds = _metrics(row, columns)
    res = {'Task': task, 'Dataset': dataset}
    if config:
        res.update(Config=config, Epochs=epochs)
    res.update(Seeds=seeds or row.get('seeds') and int(row['seeds'])
               or seeds_of(row[columns[0][0]]),
               Metrics=means, Std=stds,
               Baselines={name: _metrics(b, columns)[0]
                          for name, b in base.items()},
               Source=REPORTS + source)
    return res


def _ft_section(page, method):
    """The fine-tuning section of a recipes page whose table has a row for
    ``method``."""
    for head, rows in read_tables(page):
        if head.startswith('Fine-tuning read-out') and any(
                r.get('start') == method for r in rows):
            return head
    raise KeyError(f'{page}: no fine-tuning section with a row {method!r}')


def recipe_results(method):
    """Metadata and Results of one shipped recipe, read from the pages of the
    run that measured it (``RUNS[RECIPE_RUN[method]]``)."""
    run = RUNS[RECIPE_RUN[method]]
    page, claims = run['recipes'], run['claims']
    rows = [r for h, t in read_tables(page) if h == '' for r in t
            if r.get('features', '').startswith(method + ': ')]
    own = [r for r in rows if r['features'] != f'{method}: random init']
    if len(own) != 1 or len(rows) != 2:
        raise KeyError(f'{page}: expected one {method!r} row and one '
                       f'{method!r} random-init row, got {len(rows)} rows')
    own = own[0]
    random = find_row(page, '', 'features', f'{method}: random init')
    pixels = find_row(page, '', 'features', 'raw pixels*')
    epochs = re.search(r'(\d+) epochs\)$', own['features'])
    meta = {'Training Data': 'Fashion-MNIST train, 60,000 images'
            + (' with labels (label filter on the queue)'
               if method == 'exemplar' else ', no labels'),
            'Epochs': int(epochs.group(1)) if epochs else None,
            'Budget': '15 minutes of wall time',
            'Pretraining wall time': own['pretraining wall time'],
            'Within budget': own['within budget'].strip('*'),
            'Seeds': int(own['seeds']),
            'Training Resources': run['host']}
    results = [_result(
        'Self-supervised read-out: weighted kNN and linear probe',
        'Fashion-MNIST test (10,000 images against 60,000 training images)',
        None, None, page, own, {'random init': random, 'raw pixels': pixels},
        KNN)]
    ft_cfg, ft_epochs, _ = FINETUNE[method]
    head = _ft_section(page, method)
    ft = find_row(page, head, 'start', method)
    ft_random = find_row(page, head, 'start', 'random init')
    top1 = (('fine-tuning top-1', 'Top 1 Accuracy'),)
    if method == 'splitmask':
        results.append(_result(
            'Fine-tuning, 10% of the labels (6,000 images)',
            'Fashion-MNIST test', ft_cfg, ft_epochs, page, ft,
            {'random init': ft_random}, top1))
        return meta, results
    results.append(_result(
        'Fine-tuning, 1% of the labels (600 images)', 'Fashion-MNIST test',
        ft_cfg, ft_epochs, page, ft, {'random init': ft_random}, top1))
    name = CLAIMS_NAME.get(method, method)
    rows10 = [r for h, t in read_tables(claims) if h.startswith('(4)')
              for r in t if r['labels'] == '10%']
    own10 = [r for r in rows10 if r['start'] == name]
    random10 = [r for r in rows10 if r['start'] == 'random init']
    cfg10 = re.search(r'`(configs/[^`]*10pc\.py)`',
                      section_text(claims, '(4)'))
    if len(own10) != 1 or len(random10) != 1 or not cfg10:
        raise KeyError(f'{claims}: expected a 10% row for {name!r} and for '
                       f'random init, and the 10% config, in section (4)')
    results.append(_result(
        'Fine-tuning, 10% of the labels (6,000 images)', 'Fashion-MNIST test',
        cfg10.group(1), int(own10[0]['epochs']), claims, own10[0],
        {'random init': random10[0]}, (('top-1', 'Top 1 Accuracy'),)))
    det = find_row(page, 'Detection read-out', 'start', method)
    det_random = find_row(page, 'Detection read-out', 'start', 'random init')
    results.append(_result(
        'Object Detection and Instance Segmentation: Mask R-CNN',
        'composed Fashion-MNIST COCO set (2,000 training, 500 val images)',
        RECIPE_DET_CONFIG, DET_EPOCHS, page, det,
        {'random init': det_random},
        (('box AP', 'box AP'), ('mask AP', 'mask AP'))))
    return meta, results


def held(comparisons):
    """'yes' when every comparison's A beats its B, 'no' when none does,
    else 'partly (k of n)'."""
    wins = sum(c['A value'] > c['B value'] for c in comparisons)
    if wins == len(comparisons):
        return 'yes'
    return 'no' if wins == 0 else f'partly ({wins} of {len(comparisons)})'


def _claims_setting(page):
    """Seed, threads and date of a claims benchmark page, from its text."""
    text = section_text(page, '')
    threads = re.search(r'(\d+) thread\(s\) per training', text)
    date = re.search(r'report written (\d{4}-\d\d-\d\d)', text)
    seed = re.search(r'seed (\d+), ', text)
    if not (threads and date and seed):
        raise KeyError(f'{page}: expected "seed S", "T thread(s) per '
                       f'training" and "report written DATE" in its header')
    return (f'seed {seed.group(1)}, {threads.group(1)} thread a training on '
            f'a 2-core CPU host, {date.group(1)}')


def claims(store):
    """The papers' claims as measured here: the recipes' numbers from
    ``store`` ({recipe: Results}) and the per-method benchmarks' pages."""
    def recipe(method, task, metric):
        res = next(r for r in store[method] if r['Task'].startswith(task))
        return res['Metrics'][metric]

    def cmp(metric, a, a_value, b, b_value):
        return {'Metric': metric, 'A': a, 'A value': a_value, 'B': b,
                'B value': b_value}

    readouts = (('Self-supervised', 'kNN top-1 k=200', 'kNN k=200'),
                ('Self-supervised', 'Linear probe top-1', 'linear probe'),
                ('Fine-tuning, 1%', 'Top 1 Accuracy', '1% of the labels'),
                ('Fine-tuning, 10%', 'Top 1 Accuracy', '10% of the labels'),
                ('Object Detection', 'box AP', 'Mask R-CNN box AP'))

    def recipe_pair(a, b, a_name, b_name):
        return [cmp(label, a_name, recipe(a, task, metric), b_name,
                    recipe(b, task, metric))
                for task, metric, label in readouts]

    out = []
    page = 'claims.md'
    rows = {r['features']: r for r in dict(read_tables(page))[
        '(1) Non-parametric vs parametric instance softmax']}
    npid, param = rows['non-parametric softmax (NPID)'], \
        rows['parametric softmax']
    out.append(dict(
        Claim='The non-parametric softmax (NPID) beats the parametric '
        'instance softmax',
        Paper='Wu et al., CVPR 2018 (CIFAR-10 kNN: 80.8 vs 63.0)',
        Setting='ResNet-18 w16 (float32), first 10,000 training images, '
        '6 epochs, ' + _claims_setting(page),
        Comparisons=[cmp(c, 'NPID', number(npid[c])[0], 'parametric',
                         number(param[c])[0])
                     for c in ('backbone kNN k=200', 'backbone linear',
                               'embed kNN k=200', 'embed linear')],
        Sources=[REPORTS + page]))
    nce = [find_row(page, '(2)', 'loss', name)
           for name in ('m=1', 'm=16', 'm=256', 'm=4096', 'softmax')]
    out.append(dict(
        Claim='NCE accuracy rises with the noise samples m and approaches '
        'the full softmax',
        Paper='Wu et al., CVPR 2018',
        Setting='ResNet-18 w16 (float32), first 10,000 training images, '
        '6 epochs, kNN of the embedding, ' + _claims_setting(page),
        Comparisons=[cmp('kNN k=200', b['loss'], number(b['kNN k=200'])[0],
                         a['loss'], number(a['kNN k=200'])[0])
                     for a, b in zip(nce, nce[1:])],
        Sources=[REPORTS + page]))
    recipes_src = [REPORTS + RUNS['recipes'][k] for k in ('recipes', 'claims')]
    out.append(dict(
        Claim='AdCo beats MoCo v2 at equal epochs',
        Paper='Hu et al., CVPR 2021 (ImageNet linear: 68.6 vs 67.5)',
        Setting='the 15-minute recipes (9 epochs each), mean of 3 seeds',
        Comparisons=recipe_pair('adco', 'mocov2', 'AdCo', 'MoCo v2'),
        Sources=recipes_src))
    page = 'adco.md'
    adco = find_row(page, '', 'features', 'AdCo, K=4096')
    moco = find_row(page, '', 'features', 'MoCo v2 (mmpretrain), queue 4096')
    out.append(dict(
        Claim='AdCo beats MoCo v2 at equal epochs (longer schedule, less '
        'data)',
        Paper='Hu et al., CVPR 2021',
        Setting='ResNet-18 w16 (float32), first 10,000 training images, '
        '20 epochs, K = 4096, seed 0, 1 thread a training on a 2-core CPU '
        'host',
        Comparisons=[cmp(c, 'AdCo', number(adco[c])[0], 'MoCo v2',
                         number(moco[c])[0])
                     for c in ('backbone k=20', 'backbone k=200')],
        Sources=[REPORTS + page]))
    out.append(dict(
        Claim='Exemplar-v2 (supervised MoCo) beats MoCo v2',
        Paper='Zhao et al., ICLR 2021 (ImageNet linear: 68.9 vs 67.5; '
        'better detection transfer)',
        Setting='the 15-minute recipes (8 and 9 epochs), mean of 3 seeds; '
        'Exemplar saw the labels of its pretraining images',
        Comparisons=recipe_pair('exemplar', 'mocov2', 'Exemplar-v2',
                                'MoCo v2'),
        Sources=recipes_src))
    page = 'splitmask.md'
    top1 = {m: number(find_row(page, '', 'method', m)['top-1 (%)'])[0]
            for m in ('splitmask', 'beit', 'mae', 'random')}
    out.append(dict(
        Claim='SplitMask pretrained on the small target set alone beats '
        'BEiT-style pretraining, MAE and random init there',
        Paper='El-Nouby et al., 2021',
        Setting='ViT w64 d4 on the first 5,000 training images, 10 '
        'pretraining + 10 fine-tuning epochs (all labels of those images), '
        'seed 0, the 2-core CPU host shared with other trainings',
        Comparisons=[cmp('fine-tuning top-1', 'SplitMask', top1['splitmask'],
                         name, top1[key])
                     for key, name in (('beit', 'BEiT-style'),
                                       ('mae', 'MAE'),
                                       ('random', 'random init'))],
        Sources=[REPORTS + page]))
    ft = next(r for r in store['splitmask']
              if r['Task'].startswith('Fine-tuning'))
    out.append(dict(
        Claim='SplitMask pretrained on the target set beats random init',
        Paper='El-Nouby et al., 2021',
        Setting='the 15-minute SplitMask recipe (all 60,000 images, no '
        'labels), fine-tuned with 6,000 labels, mean of 3 seeds',
        Comparisons=[cmp('10% of the labels', 'SplitMask',
                         ft['Metrics']['Top 1 Accuracy'], 'random init',
                         ft['Baselines']['random init']['Top 1 Accuracy'])],
        Sources=[REPORTS + RUNS['recipes']['recipes']]))
    pretext = (('rotation', 'rotation'), ('relloc', 'relative location'),
               ('jigsaw', 'jigsaw'), ('maskint', 'masked intensity'))
    for task, metric, label in readouts:
        out.append(dict(
            Claim='Instance discrimination (NPID) beats the pretext tasks: '
            + label,
            Paper='Wu et al., CVPR 2018 (ImageNet, against the pretext '
            'tasks of its tables)',
            Setting='the 15-minute recipes, mean of 3 seeds; each task run '
            'on its own host beside its own random init (model zoo above)',
            Comparisons=[cmp(label, 'NPID', recipe('npid', task, metric),
                             name, recipe(m, task, metric))
                         for m, name in pretext],
            Sources=sorted({REPORTS + RUNS[RECIPE_RUN[m]][k]
                            for m in ('npid',) + tuple(p for p, _ in pretext)
                            for k in ('recipes', 'claims')})))
    for c in out:
        c['Held'] = held(c['Comparisons'])
    return out


def own_detection(path=osp.join(ROOT, 'benchmarks/reports/own_detection.json')):
    """Detection with ``mm-instdisc-det-train`` beside random init (top-level
    ``Detection``), from ``benchmarks/own_detection.py``'s json: one entry per
    data set, detector and start, with every seed."""
    import statistics
    if not osp.isfile(path):
        return []
    with open(path) as f:
        runs = json.load(f)
    groups = {}
    for r in runs:
        s = r['settings']
        groups.setdefault((s['set'], s['arch'], s['start']), []).append(r)
    out = []
    for (data, arch, start), rs in groups.items():
        rs.sort(key=lambda r: r['settings']['seed'])
        entry = {'Data': data, 'Detector': arch, 'Start': start,
                 'Epochs': rs[0]['settings']['epochs'],
                 'Seeds': [r['settings']['seed'] for r in rs],
                 'Source': osp.relpath(path, ROOT).replace('.json', '.md')}
        for key in ('bbox_mAP', 'segm_mAP'):
            vals = [r['metrics'][key] for r in rs if key in r['metrics']]
            if vals:
                entry[key] = [round(v, 2) for v in vals]
                entry[key + ' mean'] = round(statistics.mean(vals), 2)
                entry[key + ' std'] = round(statistics.stdev(vals), 2) if len(
                    vals) > 1 else 0.0
        out.append(entry)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=osp.join(ROOT, 'metafile.yml'))
    args = p.parse_args()
    import yaml
    models, store = [], {}
    cfg_root = osp.join(ROOT, 'configs')
    for dirpath, dirnames, files in os.walk(cfg_root):
        dirnames[:] = sorted(d for d in dirnames if d != '_base_')
        for f in sorted(files):
            if not f.endswith('.py'):
                continue
            rel = osp.relpath(osp.join(dirpath, f), cfg_root)
            algo = ALGORITHMS.get(rel.split(os.sep)[0], ('?', '-', '-'))
            if rel.split(os.sep)[0] == 'pretext':
                algo = next((v for k, v in PRETEXT.items()
                             if f.startswith(k)), None)
                if algo is None:
                    raise SystemExit(
                        f'configs/{rel}: no pretext task for this name; '
                        f'expected a name starting with one of '
                        f'{sorted(PRETEXT)} (add the task to PRETEXT)')
            entry = {'Name': f[:-3], 'Config': f'configs/{rel}',
                     'Algorithm': algo[0], 'Paper': algo[1],
                     'Data': data_of(f), 'Docs': algo[2]}
            method = RECIPE_OF_CONFIG.get(entry['Config'])
            if method:
                entry['Recipe'] = method
                entry['Metadata'], entry['Results'] = recipe_results(method)
                entry['Docs'] = 'docs/results.md'
                store[method] = entry['Results']
            models.append(entry)
    missing = sorted(set(METHODS) - set(store))
    if missing:
        raise SystemExit(f'recipes {missing} of benchmarks/lib/recipes.py '
                         f'have no config under configs/')
    with open(args.out, 'w') as fh:
        fh.write('# Written by benchmarks/write_metafile.py from the pages '
                 'in benchmarks/reports/: every shipped config, with measured '
                 'results where a benchmark holds them, and the papers\' '
                 'claims as measured here.\n')
        yaml.safe_dump({'Models': models, 'Claims': claims(store),
                        'Detection': own_detection()}, fh,
                       sort_keys=False, width=100, allow_unicode=True)
    print(f'wrote {len(models)} configs and {len(store)} recipes\' results '
          f'to {args.out}')


if __name__ == '__main__':
    main()
