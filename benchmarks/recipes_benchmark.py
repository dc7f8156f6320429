"""Fixed-budget recipes on all of Fashion-MNIST: pretrain, then kNN, linear probe, fine-tuning.

    python benchmarks/recipes_benchmark.py                      # every method, 3 seeds
    python benchmarks/recipes_benchmark.py --methods npid --seeds 0
    python benchmarks/recipes_benchmark.py --report-only

For each method and seed: pretrain its recipe config through tools/train.py
with 2 threads (resumable: a finished run is reused, an interrupted one resumes
from its last checkpoint), then read out the global-average-pooled backbone
(SplitMask: the mean of its ViT's patch tokens): weighted kNN (cosine, tau
0.07, k = 20 and 200) of the 10,000 test images against all 60,000 training
images, and a linear probe (L-BFGS on standardised features). Beside them,
measured the same way: raw pixels (mean-centred) and the same network at its
random initialisation (one per seed). Then fine-tuning with labels
(``FINETUNE``; ``--skip-finetune`` leaves it out): the ResNet recipes with 1%
of the labels (600 images, the subset drawn with the seed), SplitMask with
6,000 labelled images, each beside the same network fine-tuned from random
init with the same seed and schedule. The curve of kNN accuracy against
wall-clock minutes comes from the recipe's own validation (kNN against the
memory bank, or the training embeddings, every few epochs).

Detection (``--detection-seeds 0 1``): Mask R-CNN on the composed
Fashion-MNIST COCO set (``benchmarks.lib.finetune_detector``, as
``benchmarks/detection_benchmark.py``, with ``RECIPE_DET_CONFIG``, the
recipes' backbone), fine-tuned from each ResNet recipe's
checkpoint of that seed and from random init with that seed; 2 fine-tunings
run side by side with 1 thread each (``--detection-parallel``). Resumable.

Writes benchmarks/reports/recipes.md and benchmarks/reports/recipes.png. Budget: a
recipe must finish pretraining within --budget-min minutes of wall time on the
2-core machine with nothing else running; the table reports each run's wall
time against it.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import time

import _path  # noqa: F401  (sys.path: the checkout, for benchmarks.lib)

from benchmarks.lib import (DET_METRICS, ROOT, ensure_fmnist_coco,
                            finetune_classifier, finetune_detector,
                            setup_mmpretrain, train_run)
from benchmarks.lib.recipes import (DET_EPOCHS, DET_METHODS, FINETUNE,
                                    FT_RESNET, METHODS, PRETEXT,
                                    RECIPE_DET_CONFIG, detection_work_dir,
                                    finetune_work_dir, recipe_checkpoint)

# what each fine-tuning config trains on (for the report)
FT_DATA = {
    FINETUNE['splitmask'][0]: '6,000 labelled training images (the first 10% of the training '
                              'split), 30 epochs',
    FT_RESNET[0]: '1% of the labels (600 images, 60 a class, the subset drawn with the run\'s '
                  'seed), 100 epochs',
}
# features of the kNN / probe read-out: the pooled last backbone stage, or
# the model's embedding (SplitMask: the mean of the ViT's patch tokens)
FEATURE = {'splitmask': 'embed'}


DATA_CONFIG = osp.join(ROOT, 'configs/_base_/datasets/fashion-mnist_bs128_npid.py')


# training-log scalars that show each method's own mechanism at work
MECHANISM = {
    **{m: ('pretext_acc', ) for m in PRETEXT},
    'npid': ('pos_sim', 'pos_prob'),
    'adco': ('neg_prob', 'neg_sim_max', 'neg_sim_mean', 'pos_sim'),
    'exemplar': ('neg_excluded', ),
}


# what the extra rows of the report are (runs renamed in results.json)
RUN_NOTES = (
    '`mocov2_t0.2`: MoCo v2 recipe at t 0.2, 8 epochs (CPU shared with tests, 13.3 min). '
    '`mocov2_t0.1_8ep`: t 0.1, 8 epochs, quiet machine. `mocov2_10ep`: t 0.1, 10 epochs, crop '
    'scale (0.2, 1); `mocov2_10ep_slowhost`: the same at seed 1 on a slower host (over budget); '
    '`mocov2_9ep_crop0.2`: 9 epochs, crop scale (0.2, 1). `adco_memt0.1_lr3`: the first AdCo '
    'recipe (mem_t 0.1, constant negatives lr 3, key encoder reset, 8 epochs with two '
    'validations). `exemplar_disturbed`: the Exemplar recipe while tests shared the CPU '
    '(15.2 min, over budget), rerun as exemplar/0 on a quiet machine. `adco_crop0.3`: the AdCo '
    'recipe with crop scale (0.3, 1) as MoCo v2 uses (12.5 min; below the recipe\'s own seed 0 on '
    'kNN, probe and 1%-label fine-tuning (80.50 vs 81.43), so the recipe keeps (0.2, 1)). '
    '`relloc_4ep`: the first relative-location recipe, 4 epochs (15.8 min on a quiet machine, '
    'over budget; the recipe now trains 3). `rotation_slowhost`: the rotation recipe at seed 1 on '
    'a slower host (1.18-1.35 s a step against 1.03-1.17 at seed 0; 15.3 min, over budget), rerun '
    'as rotation/1 on a quiet machine (13.6 min) with the same read-outs and fine-tuning to the '
    'last digit: the runs are deterministic, only their wall time depends on the host.')


# SplitMask is a ViT: its kNN / probe rows read its pooled patch tokens, and
# its own read-out is fine-tuning (finetune_section)
SPLITMASK_NOTE = (
    '**SplitMask** is a ViT (masked-image modelling + InfoNCE between the two halves): its row '
    'above reads out the mean of its patch tokens, against the same ViT at random init; its '
    'paper\'s read-out is fine-tuning, in the next section. Seed 0\'s pretraining shared the CPU '
    'with tests for about 3 of its minutes (14.6 min; seeds 1 and 2, on a quiet machine, took '
    '11.6). Fine-tuning wall times are not part of the budget; several fine-tunings shared the CPU '
    'with the test suite.')


# the detection table counts a start as done with these fine-tuning seeds
DET_SEEDS = {0, 1, 2}
DET_COLUMNS = tuple(zip(DET_METRICS, ('box AP', 'box AP50', 'mask AP',
                                      'mask AP50')))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=list(METHODS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=PRETRAIN_THREADS)
    p.add_argument('--budget-min', type=float, default=15.0)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/recipes'))
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--skip-finetune', action='store_true',
                   help='no fine-tuning read-out (kNN and linear probe only)')
    p.add_argument('--throughput', action='store_true',
                   help='measure, per method, img/s end to end (data loader, '
                   'batch augmentation, train_step) and of the train_step on '
                   'batches already loaded and augmented, in one process; '
                   'no pretraining')
    p.add_argument('--throughput-iters', type=int, default=40)
    p.add_argument('--detection-seeds', nargs='*', type=int, default=[],
                   help='Mask R-CNN transfer from each ResNet recipe (its '
                   'pretraining of that seed) and from random init')
    p.add_argument('--detection-starts', nargs='+', default=None,
                   choices=['random', *DET_METHODS],
                   help='only these detection starts (default: random init '
                   'and every recipe with a checkpoint of the seed), e.g. '
                   'the new recipes first and random init (repeatable on '
                   'the same host at 1 thread) when there is time')
    p.add_argument('--detection-parallel', type=int, default=2,
                   help='detection fine-tunings run side by side, 1 thread '
                   'each')
    p.add_argument('--doc', default=None,
                   help='report page (default: benchmarks/reports/recipes.md for '
                   'the default --work-dir, else WORK_DIR/report/recipes.md, '
                   'so that a side run does not overwrite the published page)')
    return default_doc(p.parse_args())


def side_run(args):
    """A run with its own --work-dir (e.g. work_dirs/recipes_pretext): it
    measures a few methods, not the published table of all of them."""
    return osp.abspath(args.work_dir) != osp.join(ROOT, 'work_dirs/recipes')


def default_doc(args):
    """``--doc`` when not given: the published page belongs to the default
    work dir only."""
    if args.doc is None:
        args.doc = (osp.join(args.work_dir, 'report', 'recipes.md') if side_run(args) else
                    osp.join(ROOT, 'benchmarks/reports/recipes.md'))
    return args


def readout(cfg, checkpoint, loaders, seed, feature='backbone'):
    """kNN k=20/200 and linear probe of the pooled backbone, or of
    ``feature`` (see FEATURE), or of pixels."""
    from mm_instdisc.evaluation import (extract_features, load_model,
                                        pixel_features)
    from mm_instdisc.modules import readout
    if checkpoint == 'pixels':
        tr, te = pixel_features(loaders[0]), pixel_features(loaders[1])
    else:
        model = load_model(cfg, checkpoint)
        tr = extract_features(model, loaders[0], feature, desc='train')
        te = extract_features(model, loaders[1], feature, desc='test')
    row = readout(*tr, *te, seed=seed, num_classes=10)
    return {k: row[k] for k in ('knn_k20', 'knn_k200', 'linear')}


def val_curve(work_dir, wall_s):
    """(minutes, kNN top-1 k=200) of the run's validations; minutes are the
    logged iteration times accumulated and scaled to the measured wall time."""
    rows, t, points = [], 0.0, []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    for r in rows:
        if 'time' in r and 'loss' in r:
            t += r['time'] * 50  # logger interval of the recipes
        key = next((k for k in r if k.endswith('top1_k200')), None)
        if key is not None:
            points.append([t, r[key]])
    if points and points[-1][0] > 0:
        scale = wall_s / points[-1][0]
        points = [[m * scale / 60, a] for m, a in points]
    return points


def results_store(path):
    """The work dir's results (a dict) and its ``save()``. Several runs may
    share a work dir (e.g. one process per method, 1 thread each): ``save``
    writes, under a lock, only the rows this process changed since it last
    saved, over what is on disk, and takes in the rows the others saved
    meanwhile; the file is replaced atomically."""
    import copy
    import fcntl
    results = {}
    if osp.exists(path):
        with open(path) as f:
            results.update(json.load(f))
    seen = copy.deepcopy(results)

    def save():
        with open(path + '.lock', 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            disk = {}
            if osp.exists(path):
                with open(path) as f:
                    disk = json.load(f)
            disk.update({k: v for k, v in results.items() if seen.get(k) != v})
            with open(path + '.tmp', 'w') as f:
                json.dump(disk, f, indent=1)
            os.replace(path + '.tmp', path)
        results.clear()
        results.update(disk)
        seen.clear()
        seen.update(copy.deepcopy(disk))

    return results, save


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    results, save = results_store(osp.join(args.work_dir, 'results.json'))

    if args.throughput:
        import torch
        torch.set_num_threads(args.threads)
        setup_mmpretrain()
        for method in args.methods:
            results[f'throughput/{method}'] = throughput(
                METHODS[method][0], args.throughput_iters)
            print(f'[throughput/{method}] {results[f"throughput/{method}"]}',
                  flush=True)
            save()
    elif args.detection_seeds:
        for seed in args.detection_seeds:
            detection(args, seed)
        # the fine-tunings keep their own result.json; rows that a pretraining
        # run on the same work dir saved meanwhile come in with save() below
    elif not args.report_only:
        import torch
        torch.set_num_threads(args.threads)
        setup_mmpretrain()
        from mmengine.config import Config

        from mm_instdisc.evaluation import build_knn_dataloaders
        for method in args.methods:
            config, epochs, _ = METHODS[method]
            cfg = Config.fromfile(osp.join(ROOT, config))
            # every method reads out the same images: the dataset config's
            # training and test sets with the test pipeline (a recipe without
            # a test loop, e.g. MoCo, has no test_dataloader of its own)
            loaders = build_knn_dataloaders(Config.fromfile(DATA_CONFIG), 512)
            save()  # take in rows a run beside this one saved
            if 'pixels' not in results:
                results['pixels'] = readout(cfg, 'pixels', loaders, 0)
                save()
            for seed in args.seeds:
                save()  # e.g. the random-init fine-tuning, shared by the methods
                key = f'{method}/{seed}'
                feature = FEATURE.get(method, 'backbone')
                if f'{method}-random/{seed}' not in results:
                    torch.manual_seed(seed)
                    results[f'{method}-random/{seed}'] = readout(
                        cfg, 'none', loaders, seed, feature)
                    save()
                work_dir = osp.join(args.work_dir, method, f'seed{seed}')
                tune = method in FINETUNE and not args.skip_finetune
                if tune:
                    finetune(args, method, seed, None, results, save)
                if key in results:
                    if tune:
                        finetune(args, method, seed, osp.join(
                            work_dir, f'epoch_{epochs}.pth'), results, save)
                    if 'stats' not in results[key] and osp.isdir(work_dir):
                        results[key]['stats'] = train_stats(
                            work_dir, MECHANISM.get(method, ()))
                        save()
                    print(f'[{key}] done: knn_k200 {results[key]["knn_k200"]:.2f}')
                    continue
                run_cfg = Config.fromfile(osp.join(ROOT, config))
                run_cfg.randomness = dict(seed=seed, deterministic=False)
                ckpt, wall = train_run(key, run_cfg, work_dir, epochs,
                                       args.threads)
                t = time.time()
                results[key] = dict(readout(cfg, ckpt, loaders, seed, feature),
                                    wall_s=wall, readout_s=0.0,
                                    threads=args.threads,
                                    curve=val_curve(work_dir, wall),
                                    stats=train_stats(
                                        work_dir, MECHANISM.get(method, ())))
                results[key]['readout_s'] = time.time() - t
                print(f'[{key}] {results[key]}', flush=True)
                save()
                if tune:
                    finetune(args, method, seed, ckpt, results, save)
    # runs recorded before the mechanism logs were kept: read them now
    for key, res in results.items():
        method, _, seed = key.partition('/')
        work_dir = osp.join(args.work_dir, method, f'seed{seed}')
        if (method in METHODS and isinstance(res, dict) and 'stats' not in res
                and osp.isdir(work_dir)):
            res['stats'] = train_stats(work_dir, MECHANISM.get(method, ()))
    save()
    write_report(args, results)


def finetune(args, method, seed, checkpoint, results, save):
    """Fine-tune with labels (FINETUNE[method]) from ``checkpoint`` (None:
    random init) with the library's ``finetune_classifier``; store the last
    validation's top-1 as ``results[run]['finetune']`` (run = method/seed, or
    the method's random-init run, e.g. resnet18-w32s2-random/seed). A run
    that has it is skipped."""
    config, _, random_run = FINETUNE[method]
    key = f'{method}/{seed}' if checkpoint else f'{random_run}/{seed}'
    if 'finetune' in results.get(key, {}):
        return
    row = finetune_classifier(key, config, checkpoint,
                              finetune_work_dir(args.work_dir, method, seed, checkpoint is not None),
                              seed=seed, threads=args.threads)
    results.setdefault(key, {})
    results[key]['finetune'] = row['top1']
    results[key]['finetune_wall_s'] = row['seconds']
    save()


def throughput(config, iters, repeats=2):
    """Images per second of the recipe's training, end to end and step only.

    End to end: the config's train_dataloader (the pipeline only packs
    images), then ``model.train_step`` (batch augmentation on the device,
    forward, loss, backward, optimizer step), as the training loop runs it.
    Step only: the same train_step on batches that were loaded and augmented
    beforehand (forward, loss, backward and step only). Measured in the same
    process, alternating the two ``repeats`` times after a warm-up, so that
    the ratio end-to-end / step-only says how much the data path costs.
    """
    import tempfile

    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = tempfile.mkdtemp(prefix='throughput_')
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.train()
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = runner.build_dataloader(cfg.train_dataloader)
    batch = cfg.train_dataloader.batch_size

    # what MemoryBankHook does after each iteration (NPID refuses a step
    # while the previous step's bank update is pending)
    after_step = getattr(model, 'flush_bank_update', lambda: None)

    def train_step(data):
        model.train_step(data, wrapper)
        after_step()

    def step_only(pre):
        with wrapper.optim_context(model):
            losses = model._run_forward(pre, mode='loss')
        parsed, _ = model.parse_losses(losses)
        wrapper.update_params(parsed)
        after_step()

    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    for _ in range(5):  # warm-up (allocator, oneDNN kernels, queue fill)
        train_step(next_batch())
    e2e, step = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            train_step(next_batch())
        e2e.append(iters * batch / (time.perf_counter() - t))
        with wrapper.optim_context(model):
            pre = [model.data_preprocessor(next_batch(), True)
                   for _ in range(iters)]
        t = time.perf_counter()
        for p in pre:
            step_only(p)
        step.append(iters * batch / (time.perf_counter() - t))
    e2e_s, step_s = statistics.mean(e2e), statistics.mean(step)
    return dict(end_to_end_img_s=e2e_s, step_only_img_s=step_s,
                ratio=e2e_s / step_s, iters=iters, repeats=repeats,
                batch=batch, threads=torch_threads())


def torch_threads():
    import torch
    return torch.get_num_threads()


def train_stats(work_dir, keys):
    """[[iteration, {key: value}], ...] of the run's training log rows that
    hold any of ``keys`` (e.g. AdCo's neg_prob, Exemplar's neg_excluded)."""
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                found = {k: r[k] for k in keys if k in r}
                if found and 'iter' in r:
                    rows.append([r['iter'], found])
    return rows


# the published recipes pretrained with the script's default --threads; rows
# recorded before the thread count was kept ran so
PRETRAIN_THREADS = 2


def threads_note(runs):
    """What a wall-time cell adds when its runs did not pretrain with
    PRETRAIN_THREADS threads each (e.g. one process per method, 1 thread each,
    side by side: each run's wall time is then about that of 1 core)."""
    threads = sorted({r.get('threads', PRETRAIN_THREADS) for r in runs})
    if threads == [PRETRAIN_THREADS]:
        return ''
    return f' ({" / ".join(map(str, threads))} thread{"s" if threads != [1] else ""} a run)'


def mean_std(vals):
    if len(vals) == 1:
        return f'{vals[0]:.2f}'
    return f'{statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f}'


def write_report(args, results):
    px = results.get('pixels')
    lines = [
        '# Fixed-budget recipes on Fashion-MNIST (measured)', '',
        'Written by `.venv/bin/python benchmarks/recipes_benchmark.py` (resumable; '
        '`--report-only` rewrites this page). Pretraining on all 60,000 training images, '
        f'{PRETRAIN_THREADS} threads on the 2-core CPU machine unless the wall-time cell says '
        f'otherwise, budget {args.budget_min:.0f} minutes of wall '
        'time per run. Read-out of the global-average-pooled backbone: weighted kNN (cosine, '
        'tau 0.07) of the 10,000 test images against the 60,000 training images, and a linear '
        'probe (L-BFGS, standardised features). Random init: the same network before '
        'training, one per seed. Mean +- std over the seeds listed.', '',
        '| features | seeds | kNN k=20 | kNN k=200 | linear probe | pretraining wall time | '
        'within budget | beats raw pixels (k=200 / probe) | beats random init (k=200 / probe) |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    if px:
        lines.append(f'| raw pixels (mean-centred) | - | {px["knn_k20"]:.2f} | '
                     f'{px["knn_k200"]:.2f} | {px["linear"]:.2f} | - | - | - | - |')
    curves = {}
    for method, (config, epochs, desc) in METHODS.items():
        rnd = [results[k] for k in sorted(results)
               if k.startswith(f'{method}-random/')]
        runs = {k: results[k] for k in sorted(results)
                if k.startswith(f'{method}/')}
        if rnd:
            lines.append(
                f'| {method}: random init | {len(rnd)} | '
                f'{mean_std([r["knn_k20"] for r in rnd])} | '
                f'{mean_std([r["knn_k200"] for r in rnd])} | '
                f'{mean_std([r["linear"] for r in rnd])} | - | - | - | - |')
        if not runs:
            continue
        r = list(runs.values())
        k200 = statistics.mean(x['knn_k200'] for x in r)
        lin = statistics.mean(x['linear'] for x in r)
        walls = [x['wall_s'] / 60 for x in r]
        ok = all(w <= args.budget_min for w in walls)
        rk = statistics.mean(x['knn_k200'] for x in rnd) if rnd else float('nan')
        rl = statistics.mean(x['linear'] for x in rnd) if rnd else float('nan')
        yes = lambda b: 'yes' if b else '**no**'  # noqa: E731
        lines.append(
            f'| {method}: {desc} (`{config}`, {epochs} epochs) | {len(r)} | '
            f'{mean_std([x["knn_k20"] for x in r])} | {mean_std([x["knn_k200"] for x in r])} | '
            f'{mean_std([x["linear"] for x in r])} | '
            f'{", ".join(f"{w:.1f}" for w in walls)} min{threads_note(r)} | {yes(ok)} | '
            f'{yes(px and k200 > px["knn_k200"])} / {yes(px and lin > px["linear"])} | '
            f'{yes(k200 > rk)} / {yes(lin > rl)} |')
        for k, v in runs.items():
            # random init at minute 0, the recipe's own validations, then
            # the read-out of the final checkpoint at its wall time
            curves[k] = ([[0.0, rk]] if rnd else []) + (v.get('curve') or []) + [
                [v['wall_s'] / 60, v['knn_k200']]]
    others = {k: v for k, v in sorted(results.items())
              if '/' in k and k.split('/')[0] not in METHODS
              and '-random' not in k and not k.startswith('throughput/')}
    if others:
        lines += ['', '## Other runs (tuning and discarded runs, not in the table above)', '',
                  '| run | kNN k=20 | kNN k=200 | linear probe | wall time |', '|---|---|---|---|---|']
        for k, v in others.items():
            lines.append(f'| {k} | {v["knn_k20"]:.2f} | {v["knn_k200"]:.2f} | '
                         f'{v["linear"]:.2f} | {v["wall_s"] / 60:.1f} min |')
        lines += ['', RUN_NOTES]
    if any(k.startswith('splitmask/') for k in results):
        lines += ['', SPLITMASK_NOTE]
    lines += finetune_section(results)
    lines += detection_section(args)
    # a side run owes seeds only of the methods it has run
    expected = [m for m in METHODS if not side_run(args)
                or any(k.startswith(f'{m}/') for k in results)]
    todo = [f'{m} (seeds {", ".join(str(x) for x in args.seeds if f"{m}/{x}" not in results)})'
            for m in expected
            if any(f'{m}/{x}' not in results for x in args.seeds)]
    if todo:
        lines += ['', f'Not run yet: {"; ".join(todo)}. A method counts as done with all '
                  f'{len(args.seeds)} seeds.']
    if curves:
        plot(args, curves, px, results)
        lines += ['', f'![kNN vs wall-clock minutes]({figure(args)})', '',
                  'One line per run: at minute 0 the random-init network\'s read-out (mean over '
                  'seeds), then the recipe\'s own validations during training (kNN k=200 of the '
                  'test images against its memory bank (NPID) or the embeddings of the first 20,000 '
                  'training images (Exemplar); MoCo and AdCo validate only at the end), and last the '
                  'read-out of the final '
                  'checkpoint (backbone, as in the table) at its pretraining wall time. The '
                  'horizontal lines are the table\'s raw-pixel and random-init kNN k=200.']
    lines += mechanism_section(args, results)
    lines += throughput_section(results)
    os.makedirs(osp.dirname(osp.abspath(args.doc)), exist_ok=True)
    with open(args.doc, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


def _at(stats, key, frac):
    """Value of ``key`` at a fraction of the run's logged iterations."""
    rows = [(it, v[key]) for it, v in stats if key in v]
    if not rows:
        return float('nan')
    return rows[min(len(rows) - 1, int(frac * (len(rows) - 1) + 0.5))][1]


def finetune_section(results):
    """Fine-tuning top-1 from each recipe vs the same network at random
    init, per fine-tuning protocol (FINETUNE)."""
    lines = []
    for config in dict.fromkeys(c for c, _, _ in FINETUNE.values()):
        methods = [m for m, v in FINETUNE.items() if v[0] == config]
        epochs, random_run = FINETUNE[methods[0]][1:]
        rnd = [v for k, v in sorted(results.items())
               if k.startswith(f'{random_run}/') and 'finetune' in v]
        rows = [(m, [v for k, v in sorted(results.items())
                     if k.startswith(f'{m}/') and 'finetune' in v])
                for m in methods]
        if not rnd and not any(r for _, r in rows):
            continue
        ran = [m for m, r in rows if r] or methods
        lines += ['', f'## Fine-tuning read-out: {", ".join(ran)}', '',
                  f'`{config}`: the whole network fine-tuned with {FT_DATA[config]}, tested on '
                  'the 10,000 test images, from the recipe\'s final checkpoint and from random '
                  'init (same seed, same schedule). Mean +- std over the seeds.', '',
                  '| start | seeds | fine-tuning top-1 | per seed | fine-tuning wall time | '
                  'beats random init |', '|---|---|---|---|---|---|']
        rmean = statistics.mean(v['finetune'] for v in rnd) if rnd else float('nan')
        for name, runs in [('random init', rnd)] + rows:
            if not runs:
                continue
            vals = [v['finetune'] for v in runs]
            walls = ', '.join(f'{v.get("finetune_wall_s", 0) / 60:.1f}' for v in runs)
            beats = '-' if runs is rnd else (
                'yes' if statistics.mean(vals) > rmean else '**no**')
            lines.append(
                f'| {name} | {len(runs)} | {mean_std(vals)} | '
                f'{", ".join(f"{x:.2f}" for x in vals)} | {walls} min | {beats} |')
    return lines


def det_starts(args, seed):
    """NAME -> checkpoint of the detection starts of a seed."""
    wanted = set(args.detection_starts or ['random', *DET_METHODS])
    starts = {'random': 'none'} if 'random' in wanted else {}
    for m in DET_METHODS:
        if m not in wanted:
            continue
        ckpt = recipe_checkpoint(args.work_dir, m, seed)
        if osp.isfile(ckpt):
            starts[m] = ckpt
        else:
            print(f'[detection] no {m} checkpoint for seed {seed} ({ckpt}); '
                  'pretrain it first', flush=True)
    return starts


def detection(args, seed):
    """Fine-tune Mask R-CNN from every start of ``seed``,
    ``--detection-parallel`` at a time with 1 thread each (finished starts
    are reused, interrupted ones resume)."""
    from concurrent.futures import ThreadPoolExecutor

    data_root = osp.join(ROOT, 'data/fmnist_coco')
    ensure_fmnist_coco(data_root)  # once, before the parallel fine-tunings

    def run(start):
        name, ckpt = start
        return finetune_detector(
            name, ckpt, detection_work_dir(args.work_dir, seed, name), data_root=data_root,
            config=osp.join(ROOT, RECIPE_DET_CONFIG), epochs=DET_EPOCHS, seed=seed,
            threads=1)

    with ThreadPoolExecutor(max(1, args.detection_parallel)) as pool:
        list(pool.map(run, det_starts(args, seed).items()))


def detection_section(args):
    """Box / mask AP of Mask R-CNN from each recipe vs random init, mean
    over the detection seeds found in the work dir."""
    runs, seeds = {}, {}
    for path in sorted(glob.glob(osp.join(args.work_dir, 'detection', 'seed*', '*',
                                          'result.json'))):
        name = osp.basename(osp.dirname(path))
        with open(path) as f:
            res = json.load(f)
        runs.setdefault(name, []).append(res)
        seed = int(path.split(osp.sep)[-3][len('seed'):])
        seeds.setdefault(name, {})[seed] = 100 * res['coco/bbox_mAP']
    if not runs:
        return []
    lines = ['', '## Detection read-out: ' + ', '.join(
        m for m in DET_METHODS if m in runs), '',
             f'`{RECIPE_DET_CONFIG}`: Mask R-CNN (the recipes\' ResNet-18 w32s2 backbone, FPN, all layers '
             f'trained, BN not frozen) fine-tuned {DET_EPOCHS} epochs on 2,000 composed images '
             '(`tools/dataset_converters/make_fmnist_coco.py`: items of Fashion-MNIST training '
             'images 50,000-59,999, which the recipes saw unlabelled in pretraining), from each '
             'recipe\'s checkpoint of seed s and from random init, fine-tuning seed s; COCO AP on '
             'the 500 val images. Written by `--detection-seeds`; mean +- std over the seeds, each '
             'seed in brackets; "beats random init" compares with random init at the same seeds. '
             '1 thread per fine-tuning, two side by side.', '',
             '| start | seeds | ' + ' | '.join(n for _, n in DET_COLUMNS)
             + ' | fine-tuning wall time | box AP beats random init |',
             '|---|---|' + '---|' * len(DET_COLUMNS) + '---|---|']
    rnd = seeds.get('random', {})
    for name in ['random', *DET_METHODS]:
        rs = runs.get(name)
        if not rs:
            continue
        cells = []
        for key, _ in DET_COLUMNS:
            vals = [100 * r[key] for r in rs]
            cells.append(f'{mean_std(vals)} ({" / ".join(f"{v:.1f}" for v in vals)})')
        walls = ', '.join(f'{r["seconds"] / 60:.1f}' for r in rs)
        # against random init fine-tuned with the same seeds
        box = statistics.mean(seeds[name].values())
        if name == 'random':
            beats = '-'
        elif not set(seeds[name]) <= set(rnd):
            beats = 'no random init at these seeds'
        else:
            beats = 'yes' if box > statistics.mean(rnd[s] for s in seeds[name]) else '**no**'
        lines.append(f'| {"random init" if name == "random" else name} | {len(rs)} | '
                     + ' | '.join(cells) + f' | {walls} min | {beats} |')
    todo = {m: sorted(DET_SEEDS - set(seeds.get(m, ()))) for m in DET_METHODS
            if m in seeds or not side_run(args)}
    missing = [f'{m} (seeds {", ".join(map(str, t))})' for m, t in todo.items() if t]
    if missing:
        lines += ['', f'Not run yet: {"; ".join(missing)} (`--detection-seeds 0 1 2`: finished '
                  'fine-tunings are reused).']
    return lines


def mechanism_section(args, results):
    """Each method's own mechanism over training, from the runs' logs."""
    lines = []
    # the recipe's runs, and the superseded recipe's for contrast
    adco = {k: v['stats'] for k, v in sorted(results.items())
            if k.startswith('adco') and '-random' not in k and v.get('stats')}
    if adco:
        fracs = (0.0, 0.25, 0.5, 0.75, 1.0)
        lines += ['', '## AdCo: are the negatives adversarial?', '',
                  'Logged every 50 iterations (first query view against the key batch and the '
                  'negatives): `neg_prob`, the softmax mass at mem_t on the negatives (their '
                  'ascent gradient is proportional to it; 0 means they no longer move), '
                  '`neg_sim_max`, the cosine of a query to its closest negative (mean over '
                  'queries), `neg_sim_mean`, the mean query-negative cosine, and `pos_sim`, the '
                  'cosine of a query to its positive key. Values at 0, 25, 50, 75 and 100% of '
                  'training.', '',
                  '| run | stat | ' + ' | '.join(f'{int(f * 100)}%' for f in fracs) + ' |',
                  '|---|---|' + '---|' * len(fracs)]
        for run, st in adco.items():
            for key in MECHANISM['adco']:
                lines.append(f'| {run} | {key} | ' + ' | '.join(
                    f'{_at(st, key, f):.3f}' for f in fracs) + ' |')
        plot_adco(args, adco)
        lines += ['', f'![AdCo negatives over training]({figure(args, "_adco")})']
    ex = {k: v['stats'] for k, v in sorted(results.items())
          if k.startswith('exemplar/') and v.get('stats')}
    if ex:
        lines += ['', '## Exemplar: same-class keys excluded', '',
                  'Share of the queue\'s keys that are the query\'s class and so are not used as '
                  'negatives (`neg_excluded`, logged every 50 iterations; 10 balanced classes '
                  'give about 0.1).', '', '| run | first | mean | last |', '|---|---|---|---|']
        for run, st in ex.items():
            vals = [v['neg_excluded'] for _, v in st if 'neg_excluded' in v]
            if vals:
                lines.append(f'| {run} | {vals[0]:.3f} | {statistics.mean(vals):.3f} | '
                             f'{vals[-1]:.3f} |')
    return lines


def throughput_section(results):
    rows = {k.split('/', 1)[1]: v for k, v in sorted(results.items())
            if k.startswith('throughput/')}
    if not rows:
        return []
    lines = ['', '## Does the data path limit training?', '',
             'Written by `.venv/bin/python benchmarks/recipes_benchmark.py --throughput`: in '
             'one process, images per second of the recipe end to end (data loader, batch '
             'augmentation on the device, forward, loss, backward, optimizer step, as the training '
             'loop runs it) and of the same train_step on batches loaded and augmented '
             'beforehand, alternated twice after 5 warm-up steps. Ratio >= 0.9: the data no longer '
             'limits training.', '',
             '| recipe | batch | threads | iterations x repeats | end to end img/s | '
             'step only img/s | ratio |', '|---|---|---|---|---|---|---|']
    for m, v in rows.items():
        lines.append(f'| {m} | {v["batch"]} | {v["threads"]} | {v["iters"]} x {v["repeats"]} | '
                     f'{v["end_to_end_img_s"]:.0f} | {v["step_only_img_s"]:.0f} | '
                     f'{v["ratio"]:.3f} |')
    return lines


def plot_adco(args, stats):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for run, st in stats.items():
        its = [it for it, v in st if 'neg_prob' in v]
        ax[0].plot(its, [v['neg_prob'] for _, v in st if 'neg_prob' in v],
                   label=run)
        for key, style in (('neg_sim_max', '-'), ('pos_sim', '--'),
                           ('neg_sim_mean', ':')):
            ax[1].plot([it for it, v in st if key in v],
                       [v[key] for _, v in st if key in v], style,
                       label=f'{run} {key}')
    ax[0].set(xlabel='iteration', ylabel='neg_prob (softmax mass at mem_t)',
              ylim=(0, 1))
    ax[1].set(xlabel='iteration', ylabel='cosine to the query')
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figure(args, '_adco', path=True), dpi=90)
    plt.close(fig)


def figure(args, suffix='', path=False):
    """The report's figure: named after its page (recipes.md ->
    recipes.png, recipes_pretext.md -> recipes_pretext.png), so that a side
    run's page does not overwrite the published page's figures."""
    name = osp.splitext(osp.basename(args.doc))[0] + suffix + '.png'
    return osp.join(osp.dirname(osp.abspath(args.doc)), name) if path else name


def plot(args, curves, px, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {m: f'C{i}' for i, m in enumerate(METHODS)}
    labelled = set()
    for name, pts in sorted(curves.items()):
        method = name.split('/')[0]
        if pts:  # one colour per method, one line per seed
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o',
                    ms=3, color=colours.get(method),
                    label=None if method in labelled else method)
            labelled.add(method)
    if px:
        ax.axhline(px['knn_k200'], color='k', ls='--', label='raw pixels')
    rnd = [v['knn_k200'] for k, v in results.items()
           if '-random/' in k and 'knn_k200' in v
           and k.split('-random/')[0] in METHODS
           and k.split('-random/')[0] not in FEATURE]
    if rnd:
        ax.axhline(statistics.mean(rnd), color='grey', ls=':',
                   label='random init ResNet (mean)')
    ax.axvline(args.budget_min, color='r', lw=0.8, label='budget')
    ax.set_xlabel('wall-clock minutes of pretraining (2 cores)')
    ax.set_ylabel('kNN top-1, k=200 (%)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure(args, path=True), dpi=90)


if __name__ == '__main__':
    main()
