"""NPID on Fashion-MNIST, end to end on a CPU (README command 1).

    python tools/demo_npid.py [--work-dir work_dirs/demo_npid]
                              [--minutes 9 | --epochs E]

The demo's recipe (configs/npid/npid_resnet18-w16s2_1xb256-bf16-cos-9min_
fashion-mnist.py: the 15-minute NPID recipe at width 16; all 60,000 training
images, batched augmentation, bf16 on the CPU where it has bf16 kernels,
sampled softmax over 8,192 shared negatives) for a budget of 9 minutes: the
run times its first steps and fits warm-up + cosine to the budget, so that
the whole demo, baselines included, ends within 12 minutes on 2 cores with
bf16 kernels or without.

1. NPID pretraining through mmengine's Runner with the registered NPID,
   LossHead (NPIDLoss), MemoryBankHook, KNNReferenceHook and KNNMetric (kNN
   against the bank each epoch); it starts first, so that a fresh clone is
   training within minutes;
2. kNN on the test set with the trained network and with the baselines:
   raw pixels and the same network at its random initialisation (kept from
   before training: same architecture, same 128-d embedding);
3. a table of top-1 accuracies, a PNG of loss and kNN accuracy per epoch,
   and a retrieval grid (top-10 neighbours of test queries, as in figure 5
   of the NPID paper), all in the work dir.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time

import _common  # noqa: F401  (sys.path, compat patches)

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mm_instdisc.datasets  # noqa: F401
import mm_instdisc.engine  # noqa: F401
import mm_instdisc.evaluation  # noqa: F401
import mm_instdisc.models  # noqa: F401
from mm_instdisc.evaluation import (build_knn_dataloaders, extract_features,
                                    pixel_features)
from mm_instdisc.modules import knn_topk, readout

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs/npid/'
                  'npid_resnet18-w16s2_1xb256-bf16-cos-9min_fashion-mnist.py')


class EpochRecorder(Hook):
    """Mean training loss and validation kNN accuracy of every epoch."""

    priority = 'LOW'

    def __init__(self, t_start):
        self.history = []
        self._losses = []
        self.t_start = t_start
        self.first_iter_s = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._losses.append(float(outputs['loss'].detach()))
        if self.first_iter_s is None:
            self.first_iter_s = time.time() - self.t_start
            print(f'first training iteration done {self.first_iter_s:.0f} s '
                  'after the demo started', flush=True)

    def after_train_epoch(self, runner):
        self.history.append(dict(epoch=runner.epoch + 1,
                                 loss=sum(self._losses) / len(self._losses)))
        self._losses = []

    def after_val_epoch(self, runner, metrics=None):
        if metrics and self.history:
            self.history[-1]['knn_top1'] = metrics.get('knn/top1_k200')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo_npid'))
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--minutes', type=float, default=9.0,
                        help='training budget: the run measures its first '
                        'steps and fits its length (warm-up + cosine) to '
                        'end within it on this host, bf16 kernels or not '
                        '(default 9: about 11 minutes in all on 2 cores)')
    budget.add_argument('--epochs', type=int, default=None,
                        help='a fixed number of epochs instead')
    p.add_argument('--train-size', type=int, default=60000,
                   help='training images used for pretraining and as kNN '
                   'reference (60000 = all)')
    p.add_argument('--val-size', type=int, default=2000,
                   help='test images for the per-epoch kNN curve (the final '
                   'table always uses all 10000)')
    p.add_argument('--batch-size', type=int, default=None,
                   help="override the config's batch size (256)")
    p.add_argument('--lr', type=float, default=None,
                   help="override the config's learning rate (0.06)")
    p.add_argument('--loss-mode', default=None,
                   choices=['nce', 'softmax', 'sampled_softmax'],
                   help="override the config's NPIDLoss mode (model.head.loss.mode)")
    p.add_argument('--z-mode', default=None,
                   choices=['sample', 'batch', 'ema', 'once'])
    p.add_argument('--temperature', type=float, default=None)
    p.add_argument('--bank-init', default=None, choices=['random', 'forward'])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--cfg-options', nargs='+', default=None,
                   action=__import__('mmengine.config',
                                     fromlist=['DictAction']).DictAction,
                   help='override settings of the NPID config, key=value')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def make_cfg(args):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = args.work_dir
    cfg.model.bank_size = args.train_size
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = args.data_root
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.val_dataloader.dataset.indices = args.val_size
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    if args.train_size < 60000:
        cfg.train_dataloader.dataset.indices = args.train_size
    if args.lr:
        cfg.optim_wrapper.optimizer.lr = args.lr
    epochs = args.epochs or cfg.train_cfg.max_epochs
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                         val_interval=1)
    # the config's warm-up, then its cosine decay over the demo's epochs
    lr = cfg.optim_wrapper.optimizer.lr
    cfg.param_scheduler = [
        s for s in cfg.param_scheduler if s.type != 'CosineAnnealingLR'
    ] + [
        dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True,
             begin=0, end=epochs, eta_min=lr * 0.01)
    ]
    if args.loss_mode:
        cfg.model.head.loss.mode = args.loss_mode
    if args.z_mode:
        cfg.model.head.loss.z_mode = args.z_mode
    if args.temperature:
        cfg.model.head.loss.temperature = args.temperature
    if args.bank_init:
        for h in cfg.custom_hooks:
            if h.type == 'MemoryBankHook':
                h.init = args.bank_init
    cfg.randomness = dict(seed=args.seed)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.default_hooks.logger.interval = 50
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=1)
    per_epoch = args.train_size // cfg.train_dataloader.batch_size
    # the label-free signals on 1,024 held-out test images, every epoch,
    # beside the kNN curve (label_free_monitor.png / .json)
    cfg.custom_hooks.append(dict(
        type='LabelFreeMonitorHook', interval=per_epoch, num_samples=1024,
        dataset=dict(type='FashionMNISTIDX', data_root=args.data_root,
                     split='test', pipeline=[dict(type='PackInputs')])))
    if args.epochs is None:  # a wall-time budget, kNN after every epoch
        from mm_instdisc.engine.loops import apply_time_budget
        cfg = apply_time_budget(cfg, args.minutes, val_interval=per_epoch)
    return cfg


def knn_table_row(name, train, test, ks=(20, 200)):
    res = readout(*train, *test, ks=ks, probe=False)
    return dict(name=name, **{f'top1_k{k}': res[f'knn_k{k}'] for k in ks})


def plot_curves(history, baselines, path, val_size):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ep = [h['epoch'] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [h['loss'] for h in history], 'o-')
    ax[0].set(xlabel='epoch', ylabel='loss (mean over epoch)',
              title='NPID training loss')
    ax[1].plot(ep, [h.get('knn_top1') for h in history], 'o-',
               label=f'NPID (memory bank, {val_size} test images)')
    for name, val, style in baselines:
        ax[1].axhline(val, ls=style, color='gray', label=name)
    ax[1].set(xlabel='epoch', ylabel='kNN top-1 (%), k=200',
              title='Weighted kNN on the test set')
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retrieval_grid(test_imgs, train_imgs, test_feats, train_feats,
                   test_labels, train_labels, path, n_queries=8, k=10):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    g = torch.Generator().manual_seed(0)
    queries = torch.randperm(test_feats.shape[0], generator=g)[:n_queries]
    _, nn_idx = knn_topk(test_feats[queries], train_feats, k)
    fig, axes = plt.subplots(n_queries, k + 1,
                             figsize=(1.1 * (k + 1), 1.2 * n_queries))
    for r, q in enumerate(queries.tolist()):
        axes[r, 0].imshow(test_imgs[q], cmap='gray')
        axes[r, 0].set_title('query', fontsize=7)
        for c, j in enumerate(nn_idx[r].tolist()):
            ok = train_labels[j] == test_labels[q]
            ax = axes[r, c + 1]
            ax.imshow(train_imgs[j], cmap='gray')
            for s in ax.spines.values():
                s.set_edgecolor('green' if ok else 'red')
                s.set_linewidth(2)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle('NPID: top-10 training neighbours of test queries '
                 '(red = other class)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    t_start = time.time()
    cfg = make_cfg(args)
    recorder = EpochRecorder(t_start)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    model = runner.model
    model.init_weights()  # the runner's own call then keeps these weights
    random_init = copy.deepcopy(model).eval()

    print('== 1/3 NPID pretraining: ' + (
        f'{args.epochs} epochs' if args.epochs else
        f'a budget of {args.minutes:g} minutes') +
        f' on {args.train_size} images', flush=True)
    t_train = time.time()
    runner.train()
    t_train = time.time() - t_train
    epochs = runner.epoch  # reached (a budgeted run decides its length)
    iters = runner.iter

    # reference = the pretraining images, test pipeline (no augmentation)
    train_loader, test_loader = build_knn_dataloaders(cfg, batch_size=512)
    print('== 2/3 baselines: raw pixels, the random-init network', flush=True)
    rows = []
    train_px, test_px = pixel_features(train_loader), pixel_features(test_loader)
    rows.append(knn_table_row('raw pixels', train_px, test_px))
    rand_train = extract_features(random_init, train_loader,
                                  desc='random-init train')
    rand_test = extract_features(random_init, test_loader,
                                 desc='random-init test')
    rows.append(knn_table_row('random-init network', rand_train, rand_test))
    print(rows, flush=True)

    print('== 3/3 kNN with the NPID network', flush=True)
    npid_train = extract_features(model, train_loader, desc='NPID train')
    npid_test = extract_features(model, test_loader, desc='NPID test')
    rows.append(knn_table_row('NPID network', npid_train, npid_test))

    curves = osp.join(args.work_dir, 'npid_curves.png')
    plot_curves(recorder.history,
                [('random init', rows[1]['top1_k200'], '--'),
                 ('raw pixels', rows[0]['top1_k200'], ':')], curves,
                args.val_size)
    ds_train, ds_test = train_loader.dataset, test_loader.dataset
    train_imgs = [ds_train.get_data_info(i)['img'] for i in range(len(ds_train))]
    test_imgs = [ds_test.get_data_info(i)['img'] for i in range(len(ds_test))]
    grid = osp.join(args.work_dir, 'npid_retrieval.png')
    retrieval_grid(test_imgs, train_imgs, npid_test[0], npid_train[0],
                   npid_test[1], npid_train[1], grid)

    total = time.time() - t_start
    lines = [
        f'Weighted kNN (cosine, tau=0.07) on the Fashion-MNIST test set '
        f'(10000 images), reference = the {args.train_size} training images; '
        f'NPID: {epochs} epochs ({iters} iterations'
        + (f', budget {args.minutes:g} min' if not args.epochs else '')
        + f'), seed {args.seed}, training '
        f'{t_train / 60:.1f} min, total {total / 60:.1f} min, '
        f'{torch.get_num_threads()} threads.', '',
        '| features | kNN top-1 k=20 | kNN top-1 k=200 |', '|---|---|---|'
    ]
    lines += [f"| {r['name']} | {r['top1_k20']:.2f} | {r['top1_k200']:.2f} |"
              for r in rows]
    table = '\n'.join(lines)
    print('\n' + table + '\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, history=recorder.history,
                       epochs=epochs, iterations=iters,
                       budget_minutes=None if args.epochs else args.minutes,
                       train_minutes=t_train / 60, total_minutes=total / 60,
                       first_iter_seconds=recorder.first_iter_s),
                  f, indent=2)
    print(f'curves:    {curves}\nretrieval: {grid}\n'
          f'table:     {osp.join(args.work_dir, "results.md")}\n'
          f'checkpoint: {osp.join(args.work_dir, "epoch_%d.pth" % epochs)}')
    if rows[2]['top1_k200'] <= rows[1]['top1_k200']:
        print('WARNING: NPID did not beat the random-init network; train '
              'longer (--minutes, --epochs) or on more images '
              '(--train-size).')


if __name__ == '__main__':
    main()
