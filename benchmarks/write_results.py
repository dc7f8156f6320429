"""Write docs/results.md, the one results page, from metafile.yml alone.

    python benchmarks/write_metafile.py && python benchmarks/write_results.py

Every number on the page is read from ``metafile.yml`` (its recipes'
``Metadata`` and ``Results``, and its ``Claims``), which
``write_metafile.py`` fills from the reports in ``benchmarks/reports/``.
``tests/test_tools/test_packaging.py`` checks that the committed page is what
this script writes from the committed metafile.
"""
import argparse
import os.path as osp

from _path import ROOT  # first: sys.path gets the checkout

TASKS = (('Self-supervised', 'kNN top-1 k=20'),
         ('Self-supervised', 'kNN top-1 k=200'),
         ('Self-supervised', 'Linear probe top-1'),
         ('Fine-tuning, 1%', 'Top 1 Accuracy'),
         ('Fine-tuning, 10%', 'Top 1 Accuracy'),
         ('Object Detection', 'box AP'))
ORDER = ('npid', 'mocov2', 'adco', 'exemplar', 'splitmask', 'rotation',
         'relloc', 'jigsaw', 'maskint')
HEADER = ('kNN k=20', 'kNN k=200', 'linear probe', '1% labels',
          '10% labels', 'Mask R-CNN box AP')


def _cell(result, metric, baseline=None):
    if result is None:
        return '-'
    if baseline is not None:
        value = result['Baselines'].get(baseline, {}).get(metric)
        return '-' if value is None else f'{value:.2f}'
    std = result.get('Std', {}).get(metric)
    value = f"{result['Metrics'][metric]:.2f}"
    return value + (f' ± {std:.2f}' if std is not None else '')


def _link(path):
    return f'[{osp.basename(path)}](../{path})'


def render(meta):
    """The page, as a string, from the parsed metafile.

    Args:
        meta (dict): ``yaml.safe_load`` of metafile.yml.

    Returns:
        str: docs/results.md.
    """
    recipes = sorted((m for m in meta['Models'] if 'Recipe' in m),
                     key=lambda m: (ORDER + (m['Recipe'],)).index(m['Recipe']))
    if not recipes or 'Claims' not in meta:
        raise ValueError('metafile.yml holds no recipe results or no '
                         'Claims: run python benchmarks/write_metafile.py')
    out = ['# Results', '',
           '<!-- Written by benchmarks/write_results.py from metafile.yml; '
           'rerun python benchmarks/write_metafile.py && python '
           'benchmarks/write_results.py rather than editing -->', '',
           'Every number here is in `metafile.yml` (the recipes\' `Metadata` '
           'and `Results`, and `Claims`), which `benchmarks/write_metafile.py` '
           'fills from the measured reports in `benchmarks/reports/` '
           '(index: [benchmarks/reports/README.md]'
           '(../benchmarks/reports/README.md)).', '',
           '## Model zoo: the 15-minute Fashion-MNIST recipes', '',
           'Each method\'s row, then the same network at random init and the '
           'raw pixels, measured in the same run with the same read-out. '
           'kNN: weighted (cosine, tau 0.07), the 10,000 test images against '
           'the 60,000 training images; linear probe: L-BFGS on standardised '
           'features; fine-tuning: the whole network with 1% / 10% of the '
           'training labels, tested on the 10,000 test images; Mask R-CNN: '
           'the composed Fashion-MNIST COCO set, COCO box AP on 500 val '
           'images. Mean ± std over the seeds; `-`: not measured.', '',
           '| method | config | data | budget (epochs) | seeds | '
           + ' | '.join(HEADER) + ' |',
           '|' + '---|' * (5 + len(HEADER))]
    for m in recipes:
        res = {}
        for prefix, _ in TASKS:
            res[prefix] = next((r for r in m['Results']
                                if r['Task'].startswith(prefix)), None)
        md = m['Metadata']
        budget = (f"{md['Budget'].split(' of ')[0]} ({md['Epochs']} ep., "
                  f"{md['Pretraining wall time']})")
        out.append(f"| **{m['Algorithm']}** | [{m['Name']}](../{m['Config']}) "
                   f"| {md['Training Data']} | {budget} | {md['Seeds']} | "
                   + ' | '.join(_cell(res[p], k) for p, k in TASKS) + ' |')
        for base in ('random init', 'raw pixels'):
            cells = [_cell(res[p], k, base) for p, k in TASKS]
            if set(cells) != {'-'}:
                out.append(f'| ↳ {base} | | | | | ' + ' | '.join(cells)
                           + ' |')
    out += ['', 'Read-outs not in the columns: SplitMask\'s 10% column is '
            'its own fine-tuning config; the configs and epochs of every '
            'read-out, the std of each baseline and the mask AP are in '
            '`metafile.yml`.', '', '## Hosts, precision and seeds', '',
            'Every number above is a CPU run; "bf16" in a config\'s name is '
            'the dtype it asks for, and on a host without bf16 kernels it '
            'trains in float32 (docs/fast_training.md).', '',
            '| method | seeds | host, threads and precision | reports |',
            '|---|---|---|---|']
    for m in recipes:
        sources = sorted({r['Source'] for r in m['Results']})
        out.append(f"| {m['Algorithm']} | {m['Metadata']['Seeds']} | "
                   f"{m['Metadata']['Training Resources']} | "
                   + ', '.join(_link(s) for s in sources) + ' |')
    out += ['', '## Which claims of the papers hold at our scale', '',
            'Each comparison is A > B on the read-out named; held: A won '
            'every comparison of the row. Our scale: 28 px grey images, '
            'ResNet-18 / small ViTs, minutes of CPU training, against the '
            'papers\' ImageNet runs.', '',
            '| claim | paper | measured (A vs B) | setting | held here? |',
            '|---|---|---|---|---|']
    for c in meta['Claims']:
        measured = '; '.join(
            f"{x['Metric']}: {x['A']} {x['A value']:.2f} vs {x['B']} "
            f"{x['B value']:.2f}" for x in c['Comparisons'])
        out.append(f"| {c['Claim']} | {c['Paper']} | {measured} | "
                   f"{c['Setting']} ({', '.join(_link(s) for s in c['Sources'])}) "
                   f"| {c['Held']} |")
    if meta.get('Detection'):
        out += ['', '## Detection on your own COCO json', '',
                '`mm-instdisc-det-train` (Faster / Mask R-CNN with FPN) on real '
                'nuclei (StarDist, 128 px tiles) and on the composed '
                'Fashion-MNIST set in its box-only form, from NPID\'s and MoCo '
                'v2\'s Fashion-MNIST pretraining and from random init (the same '
                'network and initialisation); COCO box AP (mask AP), mean +- '
                'std over the seeds, CPU-sized heads, one thread per run.', '',
                '| data | detector | epochs | start | box AP | mask AP | seeds '
                '| report |', '|---|---|---|---|---|---|---|---|']
        for d in meta['Detection']:
            mask = (f"{d['segm_mAP mean']:.2f} +- {d['segm_mAP std']:.2f}"
                    if 'segm_mAP mean' in d else '-')
            out.append(
                f"| {d['Data']} | {d['Detector']} | {d['Epochs']} | "
                f"{d['Start']} | {d['bbox_mAP mean']:.2f} +- "
                f"{d['bbox_mAP std']:.2f} | {mask} | "
                f"{', '.join(map(str, d['Seeds']))} | {_link(d['Source'])} |")
    return '\n'.join(out) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--metafile', default=osp.join(ROOT, 'metafile.yml'))
    p.add_argument('--out', default=osp.join(ROOT, 'docs', 'results.md'))
    args = p.parse_args()
    import yaml
    with open(args.metafile) as f:
        page = render(yaml.safe_load(f))
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(page)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
