"""Label-free training signals (alignment, uniformity, RankMe) logged during
self-supervised pretraining and plotted at its end."""
import contextlib
import copy
import json
import math
import os.path as osp
import random
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import default_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch import Tensor, nn

from mm_instdisc.modules import alignment, loo_knn_accuracy, rankme, uniformity
from mm_instdisc.utils.checkpoint import unwrap_model

from .random_state_hook import get_rng_state, set_rng_state

CKPT_KEY = 'label_free_monitor'


@contextlib.contextmanager
def _private_random(seed: int) -> Iterator[None]:
    """Python, numpy and torch (CPU and current CUDA device) generators seeded
    with ``seed`` inside, restored to their previous states on exit: the
    monitor draws the same random numbers at every evaluation and leaves the
    training run's streams where they were."""
    state = get_rng_state()
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.random.default_generator.manual_seed(seed)  # CPU only
        if 'cuda' in state:
            torch.cuda.manual_seed(seed)  # current device only
        yield
    finally:
        set_rng_state(state)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` inside; each submodule's own ``training`` flag is
    restored on exit (modules kept in eval on purpose stay so)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _find_pipeline(cfg) -> Optional[list]:
    """The ``pipeline`` of a dataset config (of the wrapped dataset for
    ``RepeatDataset``-style wrappers, the first for ``ConcatDataset``)."""
    if cfg is None:
        return None
    if 'pipeline' in cfg:
        return copy.deepcopy(cfg['pipeline'])
    if 'dataset' in cfg:
        return _find_pipeline(cfg['dataset'])
    if 'datasets' in cfg and cfg['datasets']:
        return _find_pipeline(cfg['datasets'][0])
    return None


def _with_pipeline(cfg, pipeline: list):
    """A copy of the dataset config ``cfg`` whose images go through
    ``pipeline`` (set where the config has its pipeline)."""
    cfg = copy.deepcopy(cfg)

    def put(c) -> None:
        if 'pipeline' not in c and 'dataset' in c:
            put(c['dataset'])
        elif 'pipeline' not in c and 'datasets' in c:
            for d in c['datasets']:
                put(d)
        else:
            c['pipeline'] = copy.deepcopy(pipeline)

    put(cfg)
    return cfg


def _views(item: dict) -> List[Tensor]:
    """The image tensors of one packed sample (one or several views)."""
    x = item['inputs']
    return list(x) if isinstance(x, (list, tuple)) else [x]


@HOOKS.register_module()
class LabelFreeMonitorHook(Hook):
    """Log label-free signals of the embedding during training; plot them.

    Self-supervised pretraining on unlabelled images has no accuracy to
    watch. This hook fixes a sample of ``num_samples`` images before training
    and, every ``interval`` iterations (and after the last one), embeds it
    with the current model and logs

    * ``train/rankme``: RankMe (Garrido et al. 2023), the effective rank of
      the (N, D) embedding matrix; 1 means collapse.
    * ``train/alignment``: Wang & Isola's alignment, mean squared distance
      (``alpha=2``) between the embeddings of two augmented views of each
      image; 0 means the views agree.
    * ``train/uniformity``: Wang & Isola's uniformity (log of the mean
      Gaussian potential, ``t=2``) of the un-augmented images' embeddings; 0
      means all images share one point, lower is more spread out.
    * ``val/knn_loo_top1`` (with ``val_dataset``): leave-one-out weighted
      kNN top-1 accuracy (%) within that small labelled set (it reaches the
      text log after validation epochs; it is always in the JSON and plot).

    The embedding is ``model.embed(inputs)`` (for mm_instdisc models the
    L2-normalised backbone + neck output, the space the loss works in), else
    the global average of the last backbone stage; it is L2-normalised. For
    a model with a ``memory_bank`` (NPID) the bank's ``stats()`` are recorded
    too (``MemoryBankHook`` already logs them as ``train/bank_*``). The
    hook's own record of ``outputs['loss']`` (mean over ``loss_interval``
    iterations), the measurements and the iterations (completed training
    iterations, 0 before the first) are kept in the checkpoint, so a resumed
    run's record covers the whole run; after training, rank 0 writes
    ``label_free_monitor.png`` (loss, alignment, uniformity, RankMe, bank
    statistics, kNN) and ``label_free_monitor.json`` to ``work_dir``.

    **The sample.** Drawn with ``seed`` from ``dataset`` (a dataset config,
    built with mmpretrain's ``DATASETS``), or, without one, from the
    config's training set, which is then *not* held out. Its un-augmented
    inputs come from ``pipeline`` (default: ``dataset``'s own pipeline, or,
    for the training set, the config's val/test pipeline) through the data
    preprocessor in evaluation mode. The two views for alignment are made as
    in training: by a private copy of the preprocessor's on-device
    ``augment`` (``BatchAugmentPreprocessor``), called in training mode on
    the un-augmented batch, its stream re-seeded at every evaluation; for a
    preprocessor without ``augment``, by two passes of ``view_pipeline``
    (default: the training pipeline; one pass of a ``MultiView`` pipeline
    gives both views), made once before training. Either way each evaluation
    sees the same images and the same views.

    **Training is not disturbed.** The model is put in eval mode (batch
    norm uses its running statistics and updates nothing; each module's
    mode is restored after), gradients are off, and every global random
    generator (Python, numpy, torch CPU, the current CUDA device's) is saved
    before and restored after the hook's work, so the training run's streams,
    and its losses, are those of a run without the hook. The model's own
    augmentation stream is never drawn from.

    **Distributed.** Every rank embeds the same sample (no collective call,
    except ``stats()`` of a ``ShardedMemoryBank``, which all ranks reach
    together); rank 0 writes the files. A wrapped model is unwrapped
    (:func:`~mm_instdisc.utils.checkpoint.unwrap_model`).

    Config example::

        custom_hooks += [
            dict(type='LabelFreeMonitorHook', interval=500,
                 dataset=dict(type='CustomDataset', data_root='data/held',
                              with_label=False,
                              pipeline=[dict(type='LoadImageFromFile'),
                                        dict(type='PackInputs')]))
        ]

    Args:
        interval (int): Training iterations between evaluations.
            Defaults to 1000.
        num_samples (int): Images in the sample (fewer if the dataset is
            smaller, at least 2). RankMe needs ``num_samples`` well above the
            embedding dimension. Defaults to 512.
        seed (int): Seed of the sample and of the views. Defaults to 0.
        batch_size (int): Images per forward pass. Defaults to 128.
        dataset (dict, optional): Config of the held-out images. Defaults to
            None (the training set).
        pipeline (list[dict], optional): Un-augmented pipeline of the sample.
            Defaults to None (see above).
        view_pipeline (list[dict], optional): Augmenting pipeline of the two
            views, for a preprocessor without ``augment``. Defaults to None
            (the training pipeline).
        val_dataset (dict, optional): Config of a small labelled dataset (its
            own, un-augmented pipeline; e.g. a ``CustomDataset`` with a
            sub-folder per class) for ``val/knn_loo_top1``. Defaults to None.
        knn_k (int): Neighbours of the kNN vote. Defaults to 20.
        knn_temperature (float): Temperature of the kNN vote weights.
            Defaults to 0.07.
        alpha (float): Exponent of the alignment. Defaults to 2.
        t (float): Scale of the uniformity potential. Defaults to 2.
        loss_interval (int): Iterations averaged into one loss record.
            Defaults to 10.
    """

    # after the NORMAL hooks (MemoryBankHook applies the bank update), before
    # LoggerHook (BELOW_NORMAL, 60), so this iteration's values are logged
    priority = 55

    def __init__(self,
                 interval: int = 1000,
                 num_samples: int = 512,
                 seed: int = 0,
                 batch_size: int = 128,
                 dataset: Optional[dict] = None,
                 pipeline: Optional[List[dict]] = None,
                 view_pipeline: Optional[List[dict]] = None,
                 val_dataset: Optional[dict] = None,
                 knn_k: int = 20,
                 knn_temperature: float = 0.07,
                 alpha: float = 2.0,
                 t: float = 2.0,
                 loss_interval: int = 10) -> None:
        for name, value, least in (('interval', interval, 1),
                                   ('num_samples', num_samples, 2),
                                   ('batch_size', batch_size, 1),
                                   ('knn_k', knn_k, 1),
                                   ('loss_interval', loss_interval, 1)):
            if isinstance(value, bool) or not isinstance(
                    value, int) or value < least:
                raise ValueError(f'LabelFreeMonitorHook: illegal {name}='
                                 f'{value!r}; expected an integer >= {least}.')
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f'LabelFreeMonitorHook: illegal seed={seed!r}; '
                             'expected an integer >= 0.')
        for name, value in (('knn_temperature', knn_temperature),
                            ('alpha', alpha), ('t', t)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and value > 0):
                raise ValueError(f'LabelFreeMonitorHook: illegal {name}='
                                 f'{value!r}; expected a number > 0.')
        for name, value in (('dataset', dataset), ('val_dataset',
                                                   val_dataset)):
            if value is not None and not isinstance(value, dict):
                raise ValueError(f'LabelFreeMonitorHook: {name} must be a '
                                 f'dataset config dict, got '
                                 f'{type(value).__name__}.')
        self.interval = interval
        self.num_samples = num_samples
        self.seed = seed
        self.batch_size = batch_size
        self.dataset = copy.deepcopy(dataset)
        self.pipeline = copy.deepcopy(pipeline)
        self.view_pipeline = copy.deepcopy(view_pipeline)
        self.val_dataset = copy.deepcopy(val_dataset)
        self.knn_k = knn_k
        self.knn_temperature = float(knn_temperature)
        self.alpha = float(alpha)
        self.t = float(t)
        self.loss_interval = loss_interval
        # (completed iterations, {signal: value}) and (iteration, mean loss)
        self.history: List[Tuple[int, Dict[str, float]]] = []
        self.losses: List[Tuple[int, float]] = []
        self._loss_sum, self._loss_count = 0.0, 0
        self._raw: List[dict] = []
        self._view_items: Optional[List[Tuple[dict, dict]]] = None
        self._augmenter: Optional[nn.Module] = None
        self._val_items: List[dict] = []
        self._val_labels: Optional[Tensor] = None
        self._held_out = dataset is not None
        self._warned_dim = False
        self._pending: Optional[dict] = None

    # ------------------------------------------------------------ the sample
    def before_train(self, runner) -> None:
        self._adopt_checkpoint(runner)
        model = unwrap_model(runner.model)
        with _private_random(self.seed):
            self._prepare(runner, model)
        if not any(it == runner.iter for it, _ in self.history):
            self._evaluate(runner, runner.iter)

    def _resolve(self, runner, on_device: bool):
        """Dataset config, un-augmented pipeline and view pipeline (None
        when the preprocessor augments)."""
        cfg = getattr(runner, 'cfg', None) or {}
        train_ds = (cfg.get('train_dataloader') or {}).get('dataset')
        if self.dataset is not None:
            ds_cfg = self.dataset
            raw = self.pipeline or _find_pipeline(ds_cfg)
        else:
            if train_ds is None:
                raise ValueError(
                    'LabelFreeMonitorHook: no dataset= given and the config '
                    'has no train_dataloader.dataset to draw the sample from.')
            ds_cfg = train_ds
            raw = self.pipeline
            for loader in ('val_dataloader', 'test_dataloader'):
                if raw is None:
                    raw = _find_pipeline(
                        (cfg.get(loader) or {}).get('dataset'))
            if raw is None and on_device:  # the training pipeline only packs
                raw = _find_pipeline(train_ds)
        if raw is None:
            raise ValueError(
                'LabelFreeMonitorHook: cannot tell the un-augmented pipeline '
                'of the sample; give pipeline=[..., dict(type=\'PackInputs\')]'
                '.')
        views = None
        if not on_device:
            views = self.view_pipeline or _find_pipeline(train_ds)
            if views is None:
                raise ValueError(
                    'LabelFreeMonitorHook: the data preprocessor has no '
                    '`augment` and the config no training pipeline; give '
                    'view_pipeline= (the augmentation of the two views).')
        return ds_cfg, raw, views

    def _build(self, runner, ds_cfg, pipeline: list):
        """The dataset ``ds_cfg`` with ``pipeline``: the runner's training
        set itself where that is what it would build (no second scan or
        cache of a large image folder)."""
        from mmpretrain.registry import DATASETS
        if self.dataset is None and pipeline == _find_pipeline(ds_cfg):
            return runner.train_dataloader.dataset
        return DATASETS.build(_with_pipeline(ds_cfg, pipeline))

    def _prepare(self, runner, model: nn.Module) -> None:
        from mmpretrain.registry import DATASETS
        pre = model.data_preprocessor
        augment = getattr(pre, 'augment', None)
        on_device = isinstance(augment, nn.Module)
        ds_cfg, raw, views = self._resolve(runner, on_device)
        raw_ds = self._build(runner, ds_cfg, raw)
        n = len(raw_ds)
        if n < 2:
            raise ValueError(f'LabelFreeMonitorHook: the sample dataset has '
                             f'{n} images; at least 2 are needed.')
        g = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(n, generator=g)[:self.num_samples].sort().values
        idx = idx.tolist()
        if n < self.num_samples:
            runner.logger.warning(
                f'LabelFreeMonitorHook: num_samples={self.num_samples} but '
                f'the dataset has {n} images; using all of them.')
        self._raw = [raw_ds[i] for i in idx]
        if on_device:
            self._augmenter = copy.deepcopy(pre)
            self._view_items = None
        else:
            view_ds = self._build(runner, ds_cfg, views)
            if len(view_ds) != n:
                raise ValueError(
                    f'LabelFreeMonitorHook: the view pipeline gives a dataset '
                    f'of {len(view_ds)} images, the sample pipeline {n}.')
            self._view_items = []
            for i in idx:
                first = view_ds[i]
                vs = _views(first)
                if len(vs) < 2:  # one view per pass: a second pass
                    vs += _views(view_ds[i])
                self._view_items.append(tuple(
                    dict(inputs=v, data_samples=first['data_samples'])
                    for v in vs[:2]))
        if self.val_dataset is not None:
            val_ds = DATASETS.build(copy.deepcopy(self.val_dataset))
            if len(val_ds) < 2:
                raise ValueError(f'LabelFreeMonitorHook: val_dataset has '
                                 f'{len(val_ds)} images; the leave-one-out '
                                 'kNN needs at least 2.')
            self._val_items = [val_ds[i] for i in range(len(val_ds))]
            labels = []
            for i, item in enumerate(self._val_items):
                ds = item.get('data_samples')
                if ds is None or 'gt_label' not in ds:
                    raise ValueError(
                        f'LabelFreeMonitorHook: val_dataset image {i} has no '
                        'gt_label; the kNN accuracy needs a labelled set '
                        '(e.g. CustomDataset with a sub-folder per class).')
                labels.append(int(ds.gt_label[0]))
            self._val_labels = torch.tensor(labels)
        where = ('held-out dataset' if self._held_out else
                 'training set (not held out)')
        runner.logger.info(
            f'LabelFreeMonitorHook: {len(self._raw)} images from the {where}'
            f', views by ' + ('the preprocessor\'s augment' if on_device else
                              'the view pipeline') + (
                f', {len(self._val_items)} labelled images for kNN'
                if self._val_items else ''))

    # ------------------------------------------------------------- embedding
    def _features(self, model: nn.Module, inputs) -> Tensor:
        from mm_instdisc.evaluation import model_features
        return F.normalize(model_features(model, inputs, 'embed').float(),
                           dim=1)

    def _embed(self, model: nn.Module, items: Sequence[dict]) -> Tensor:
        """L2-normalised embeddings (N, D) of packed samples, through the
        data preprocessor in evaluation mode."""
        feats = []
        for b in range(0, len(items), self.batch_size):
            data = model.data_preprocessor(
                default_collate(list(items[b:b + self.batch_size])), False)
            feats.append(self._features(model, data['inputs']))
        return torch.cat(feats)

    def _embed_views(self, model: nn.Module) -> Tuple[Tensor, Tensor]:
        """Embeddings (N, D) of the two augmented views of the sample."""
        if self._view_items is not None:
            return (self._embed(model, [v[0] for v in self._view_items]),
                    self._embed(model, [v[1] for v in self._view_items]))
        pre = self._augmenter
        assert pre is not None
        pre.to(model.data_preprocessor.device)
        aug = pre.augment
        if hasattr(aug, 'rng_seed') and hasattr(aug, 'rng_calls'):
            # BatchAugment: the same stream (stream 0 on every rank) each time
            state = aug.state_dict()
            state['rng_seed'] = torch.tensor(self.seed)
            state['rng_calls'] = torch.tensor(0)
            aug.load_state_dict(state)
            aug.stream = 0
        f1, f2 = [], []
        for b in range(0, len(self._raw), self.batch_size):
            batch = default_collate(self._raw[b:b + self.batch_size])
            views: List[Tensor] = []
            while len(views) < 2:
                out = pre(dict(inputs=batch['inputs'], data_samples=None),
                          True)['inputs']
                views += list(out) if isinstance(out, (list, tuple)) else [out]
            f1.append(self._features(model, views[0]))
            f2.append(self._features(model, views[1]))
        return torch.cat(f1), torch.cat(f2)

    @torch.no_grad()
    def _evaluate(self, runner, it: int) -> Dict[str, float]:
        """Measure, log and record the signals after ``it`` iterations."""
        model = unwrap_model(runner.model)
        with _private_random(self.seed), _eval_mode(model):
            z = self._embed(model, self._raw)  # (N, D)
            z1, z2 = self._embed_views(model)  # (N, D) each
            values = dict(
                rankme=float(rankme(z)),
                alignment=float(alignment(z1, z2, self.alpha)),
                uniformity=float(uniformity(z, self.t)))
            bank = getattr(model, 'memory_bank', None)
            if bank is not None and hasattr(bank, 'stats'):
                values.update({f'bank_{k}': float(v)
                               for k, v in bank.stats().items()})
            if self._val_items:
                feats = self._embed(model, self._val_items)
                values['knn_loo_top1'] = loo_knn_accuracy(
                    feats, self._val_labels, self.knn_k, self.knn_temperature)
        if not self._warned_dim and z.shape[0] <= z.shape[1]:
            self._warned_dim = True
            runner.logger.warning(
                f'LabelFreeMonitorHook: {z.shape[0]} samples for a '
                f'{z.shape[1]}-d embedding; RankMe cannot exceed the number '
                'of samples and means little unless num_samples >> dim.')
        for k in ('rankme', 'alignment', 'uniformity'):
            runner.message_hub.update_scalar(f'train/{k}', values[k])
        if 'knn_loo_top1' in values:
            runner.message_hub.update_scalar('val/knn_loo_top1',
                                             values['knn_loo_top1'])
        self.history = [h for h in self.history if h[0] != it]
        self.history.append((int(it), values))
        runner.logger.info(f'LabelFreeMonitorHook iter {it}: ' + ', '.join(
            f'{k}={v:.4g}' for k, v in values.items()))
        return values

    # ------------------------------------------------------------- training
    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        last = self.is_last_train_iter(runner)
        loss = outputs.get('loss') if isinstance(outputs, dict) else None
        if loss is not None:
            self._loss_sum += float(
                loss.detach() if isinstance(loss, Tensor) else loss)
            self._loss_count += 1
        if self._loss_count and (self.every_n_train_iters(
                runner, self.loss_interval) or last):
            self.losses.append(
                (runner.iter + 1, self._loss_sum / self._loss_count))
            self._loss_sum, self._loss_count = 0.0, 0
        if self.every_n_train_iters(runner, self.interval) or last:
            self._evaluate(runner, runner.iter + 1)

    def after_train(self, runner) -> None:
        if self._raw and (not self.history
                          or self.history[-1][0] != runner.iter):
            self._evaluate(runner, runner.iter)
        if self._loss_count:
            self.losses.append(
                (runner.iter, self._loss_sum / self._loss_count))
            self._loss_sum, self._loss_count = 0.0, 0
        if is_main_process():
            base = osp.join(runner.work_dir, CKPT_KEY)
            with open(base + '.json', 'w') as f:
                json.dump(self.record(), f, indent=1)
            self.plot(base + '.png')

    # ------------------------------------------------------------ checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CKPT_KEY] = dict(
            history=[[it, dict(v)] for it, v in self.history],
            losses=[[it, loss] for it, loss in self.losses])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # adopted in before_train, once the loop knows whether this is a
        # resume (``load_from`` alone also calls this hook, at iteration 0)
        self._pending = checkpoint.get(CKPT_KEY)

    def _adopt_checkpoint(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is None or runner.iter == 0:
            return  # a fresh run: weights from load_from, a new record
        self.history = [(int(it), dict(v)) for it, v in state['history']
                        if int(it) <= runner.iter]
        self.losses = [(int(it), float(loss)) for it, loss in state['losses']
                       if int(it) <= runner.iter]
        self._loss_sum, self._loss_count = 0.0, 0

    # --------------------------------------------------------------- output
    def record(self) -> dict:
        """The history as written to ``label_free_monitor.json``."""
        return dict(
            num_samples=len(self._raw), held_out=self._held_out,
            seed=self.seed, interval=self.interval,
            history=[dict(iter=it, **v) for it, v in self.history],
            loss=[[it, loss] for it, loss in self.losses])

    def plot(self, path: str) -> None:
        """Write the panels (matplotlib's Agg canvas; pyplot untouched)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        its = [it for it, _ in self.history]

        def series(key):
            return [v.get(key, math.nan) for _, v in self.history]

        panels = [('loss', 'training loss',
                   [('loss', [i for i, _ in self.losses],
                     [v for _, v in self.losses])])]
        for key, title in (('alignment', 'alignment (lower: views agree)'),
                           ('uniformity', 'uniformity (lower: spread out)'),
                           ('rankme', 'RankMe (1: collapse)')):
            panels.append((key, title, [(key, its, series(key))]))
        bank = sorted({k for _, v in self.history for k in v
                       if k.startswith('bank_')})
        if bank:
            panels.append(('bank', 'memory bank',
                           [(k[5:], its, series(k)) for k in bank]))
        if any('knn_loo_top1' in v for _, v in self.history):
            panels.append(('knn', 'leave-one-out kNN top-1 (%)',
                           [('knn', its, series('knn_loo_top1'))]))
        cols = 2
        rows = (len(panels) + cols - 1) // cols
        fig = Figure(figsize=(5 * cols, 3.2 * rows))
        FigureCanvasAgg(fig)
        for i, (_, title, lines) in enumerate(panels):
            ax = fig.add_subplot(rows, cols, i + 1)
            for label, x, y in lines:
                ax.plot(x, y, marker='.' if len(x) < 50 else None,
                        label=label)
            if len(lines) > 1:
                ax.legend(fontsize='small')
            ax.set_title(title)
            ax.set_xlabel('iteration')
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
