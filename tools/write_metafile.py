"""Write metafile.yml: every shipped config with its algorithm, data, the
doc that holds its measurements, and the measured results of the 15-minute
Fashion-MNIST recipes (mean over seeds, from the recipes benchmark).

    python tools/write_metafile.py [--results work_dirs/recipes/results.json]
        [--results-doc docs/benchmarks/recipes.md]

Without the results file the recipes' numbers already in metafile.yml are
kept (with the page that holds them); a recipe found in the results file
gets its numbers and ``--results-doc``, the report written from that file.
``mm_instdisc.list_configs`` lists the same configs.
"""
import argparse
import json
import os
import os.path as osp
import statistics

from mm_instdisc.benchmarks.recipes import FINETUNE, FT_RESNET, METHODS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALGORITHMS = {
    'npid': ('NPID', 'Wu et al., CVPR 2018', 'docs/npid.md'),
    'adco': ('AdCo', 'Hu et al., CVPR 2021', 'docs/adco.md'),
    'exemplar': ('Exemplar', 'Zhao et al., ICLR 2021', 'docs/exemplar.md'),
    'mocov2': ('MoCo v2 (mmpretrain MoCo)', 'Chen et al., 2020',
               'docs/benchmarks/recipes.md'),
    'splitmask': ('SplitMask', 'El-Nouby et al., 2021', 'docs/splitmask.md'),
    'supervised': ('Supervised baseline', '-', 'docs/benchmarks/claims.md'),
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
# config -> key prefix in the recipes benchmark's results, and the metric
# name of each recipe's fine-tuning read-out (the benchmark's FINETUNE)
RECIPE_KEYS = {cfg[len('configs/'):]: method
               for method, (cfg, _, _) in METHODS.items()}
FINETUNE_METRIC = {
    method: 'Fine-tuning top-1 ('
    + ('1% labels' if ft == FT_RESNET else '6,000 labels') + ')'
    for method, ft in FINETUNE.items()}


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


def recipe_results(results, key):
    runs = [v for k, v in results.items() if k.startswith(key + '/')]
    if not runs:
        return None
    mean = lambda f: round(statistics.mean(r[f] for r in runs), 2)  # noqa
    metrics = {'kNN top-1 k=20': mean('knn_k20'),
               'kNN top-1 k=200': mean('knn_k200'),
               'Linear probe top-1': mean('linear'),
               'Pretraining minutes (2 CPU cores)':
               round(statistics.mean(r['wall_s'] for r in runs) / 60, 1)}
    if key in FINETUNE_METRIC and all('finetune' in r for r in runs):
        metrics[FINETUNE_METRIC[key]] = mean('finetune')
    return {'Task': 'Self-supervised pretraining, read-out on Fashion-MNIST test',
            'Seeds': len(runs), 'Metrics': metrics}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--results',
                   default=osp.join(ROOT, 'work_dirs/recipes/results.json'))
    p.add_argument('--results-doc', default='docs/benchmarks/recipes.md',
                   help='the page written from --results (the Docs of the '
                   'recipes it holds)')
    p.add_argument('--out', default=osp.join(ROOT, 'metafile.yml'))
    args = p.parse_args()
    import yaml
    results = json.load(open(args.results)) if osp.exists(args.results) else {}
    old = {}
    if osp.exists(args.out):
        for m in (yaml.safe_load(open(args.out)) or {}).get('Models', []):
            old[m['Config']] = (m.get('Results'), m['Docs'])
    models = []
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
            res = None
            if rel in RECIPE_KEYS:
                res = recipe_results(results, RECIPE_KEYS[rel])
                entry['Docs'] = args.results_doc
                if res is None and entry['Config'] in old:
                    res, entry['Docs'] = old[entry['Config']]
            if res:
                entry['Results'] = res
            models.append(entry)
    with open(args.out, 'w') as fh:
        fh.write('# Written by tools/write_metafile.py: every shipped config, '
                 'with measured results where a benchmark holds them.\n')
        yaml.safe_dump({'Models': models}, fh, sort_keys=False, width=100)
    print(f'wrote {len(models)} configs to {args.out}')


if __name__ == '__main__':
    main()
