"""Running a model over a data set for evaluation: feature extraction,
the kNN data loaders of a config, raw-pixel features, training labels, and
loading a checkpoint into a config's model.

Every loop that runs a model over a loader for evaluation goes through
:func:`iter_features` (the kNN reference hook, NPID's forward bank
initialisation, ``tools/knn_eval.py`` and the benchmarks).
"""
import copy
import sys
from typing import Iterator, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

FEATURES = ('embed', 'backbone')


def _progress(desc: str, i: int, total: int) -> None:
    if i % 10 == 0 or i == total - 1:
        done = int(30 * (i + 1) / total)
        sys.stderr.write(f'\r[{desc}] [{"#" * done}{"." * (30 - done)}] '
                         f'{i + 1}/{total} batches')
        if i == total - 1:
            sys.stderr.write('\n')
        sys.stderr.flush()


def model_features(model, inputs, feature: str = 'embed') -> Tensor:
    """One batch's features: the model's L2-normalised ``embed`` output
    (``feature='embed'``; models without ``embed`` fall back to the
    backbone) or the L2-normalised global average of the last backbone stage
    (``'backbone'``; token sequences are used as they come)."""
    if feature not in FEATURES:
        raise ValueError(f'Illegal feature: {feature!r}; expected one of '
                         f'{FEATURES}.')
    if isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    if feature == 'embed' and hasattr(model, 'embed'):
        return model.embed(inputs)
    out = model.backbone(inputs)
    out = out[-1] if isinstance(out, (list, tuple)) else out
    return F.normalize(out.flatten(2).mean(2) if out.dim() == 4 else out,
                       dim=1)


@torch.no_grad()
def iter_features(model, dataloader, feature: str = 'embed',
                  progress: bool = True, desc: str = 'features'
                  ) -> Iterator[Tuple[Tensor, List]]:
    """Yield ``(features (B, D), data_samples)`` for each batch of a loader,
    the model in eval mode (its training mode is restored at the end).

    Batches go through the model's data preprocessor in evaluation mode;
    ``feature`` is as in :func:`model_features`. With ``progress`` a bar is
    written to stderr.
    """
    was_training = model.training
    model.eval()
    total = len(dataloader)
    try:
        for i, data in enumerate(dataloader):
            data = model.data_preprocessor(data, False)
            yield (model_features(model, data['inputs'], feature),
                   data['data_samples'])
            if progress:
                _progress(desc, i, total)
    finally:
        model.train(was_training)


def extract_features(model, dataloader, feature: str = 'embed',
                     progress: bool = True,
                     desc: str = 'features') -> Tuple[Tensor, Tensor]:
    """Features and labels of a whole (non-distributed) dataloader.

    Args:
        model: An mmpretrain model with a data preprocessor.
        dataloader: Yields mmengine-style batches (``default_collate``).
        feature (str): ``'embed'`` (the model's L2-normalised embedding, e.g.
            NPID's 128-d output) or ``'backbone'`` (global average of the last
            backbone stage). Defaults to ``'embed'``.
        progress (bool): Print a progress bar to stderr. Defaults to True.

    Returns:
        tuple[Tensor, Tensor]: Features (N, D), float32 on the CPU, and
        labels (N, ) (-1 for unlabelled samples), in dataset order.
    """
    feats, labels, idxs = [], [], []
    for f, samples in iter_features(model, dataloader, feature, progress,
                                    desc):
        feats.append(f.float().cpu())
        for ds in samples:
            labels.append(int(ds.gt_label[0]) if 'gt_label' in ds else -1)
            idxs.append(int(ds.sample_idx) if 'sample_idx' in ds else len(idxs))
    order = torch.argsort(torch.tensor(idxs))
    return torch.cat(feats)[order], torch.tensor(labels)[order]


def build_knn_dataloaders(cfg, batch_size: int = 256):
    """Train and test loaders of a config, both with the *test* pipeline."""
    from mmengine.runner import Runner
    test_cfg = copy.deepcopy(cfg.get('test_dataloader') or cfg.val_dataloader)
    train_cfg = copy.deepcopy(cfg.train_dataloader)
    train_cfg.dataset.pipeline = copy.deepcopy(test_cfg.dataset.pipeline)
    loaders = []
    for c in (train_cfg, test_cfg):
        c.batch_size = batch_size
        c.sampler = dict(type='DefaultSampler', shuffle=False, round_up=False)
        c.drop_last = False
        c.persistent_workers = False
        c.setdefault('collate_fn', dict(type='default_collate'))
        loaders.append(Runner.build_dataloader(c))
    return loaders[0], loaders[1]


@torch.no_grad()
def pixel_features(dataloader) -> Tuple[Tensor, Tensor]:
    """Raw pixels as features (flattened, each image mean-centred) and labels.

    The baseline every learned representation on small grey images must be
    compared with (kNN on Fashion-MNIST pixels is already about 80-85%).
    """
    xs, ys = [], []
    for data in dataloader:
        x = data['inputs']
        x = torch.stack(x) if isinstance(x, (list, tuple)) else x
        xs.append(x.float().flatten(1))
        ys += [int(ds.gt_label[0]) for ds in data['data_samples']]
    x = torch.cat(xs)
    return x - x.mean(1, keepdim=True), torch.tensor(ys)


def dataset_labels(dataset) -> Tensor:
    """Integer class labels of every image of a dataset, shape (N, )."""
    if hasattr(dataset, 'get_gt_labels'):
        return torch.as_tensor(dataset.get_gt_labels()).long()
    return torch.tensor([int(dataset.get_data_info(i)['gt_label'])
                         for i in range(len(dataset))])


def load_model(cfg, checkpoint: str):
    """The config's model with a checkpoint's weights, in eval mode.

    ``checkpoint='none'`` gives the randomly initialised network. A memory
    bank in the checkpoint sizes the model's bank (the pretraining set may
    differ from the config's training set). Missing model keys raise a
    ``KeyError`` naming them; unexpected keys are reported and ignored.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpretrain.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    state = None
    if checkpoint != 'none':
        ckpt = _load_checkpoint(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        bank = state.get('memory_bank.bank')
        if bank is not None and 'bank_size' in cfg.model:
            # the bank belongs to the pretraining set, which may differ from
            # the config's training set used here as kNN reference
            cfg.model.bank_size = bank.shape[0]
    model = MODELS.build(cfg.model)
    if state is not None:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise KeyError(f'{checkpoint} lacks {len(missing)} model keys, e.g. '
                           f'{missing[:5]}; is it a checkpoint of this config?')
        if unexpected:
            print(f'warning: ignoring {len(unexpected)} unexpected keys, e.g. '
                  f'{unexpected[:3]}')
    else:
        model.init_weights()
    return model.eval()
