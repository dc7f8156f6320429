"""The pretraining runs of the per-method benchmarks (AdCo's and
Exemplar's), which the claims benchmark reuses as its pretrained starts."""
from typing import Optional

from .runs import fmnist_run_config

#: adco_benchmark.py's runs (``adco-K/4``: a quarter of the negatives).
ADCO_CONFIGS = dict(
    adco='configs/adco/adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py',
    mocov2='configs/mocov2/mocov2_resnet18-w16_1xb128-coslr-10e_'
    'fashion-mnist.py',
    npid='configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py')
ADCO_RUNS = ['adco', 'adco-K/4', 'adco-K/8', 'mocov2', 'npid']

#: exemplar_benchmark.py's runs.
EXEMPLAR_CONFIGS = dict(
    exemplar='configs/exemplar/'
    'exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py',
    mocov2='configs/mocov2/'
    'mocov2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py',
    supervised='configs/supervised/'
    'resnet18-w16_1xb128-coslr-10e_fashion-mnist.py')
EXEMPLAR_RUNS = ['exemplar', 'mocov2', 'supervised']


def adco_run_config(name: str, *, data_root: str, train_size: int,
                    epochs: int, batch_size: int, num_negatives: int,
                    seed: int, lr: Optional[float] = None):
    """One run of adco_benchmark.py: ``num_negatives`` is AdCo's K (divided
    for ``adco-K/4``, ``adco-K/8``), MoCo v2's queue length and NPID's NCE
    noise samples m (which must be below ``train_size``); NPID keeps a bank
    of ``train_size`` rows and validates once, at the end, on 2,000 test
    images."""
    if name not in ADCO_RUNS:
        raise ValueError(f'Unknown AdCo benchmark run {name!r}; expected one '
                         f'of {ADCO_RUNS}.')
    base = name.split('-')[0]
    cfg = fmnist_run_config(ADCO_CONFIGS[base], data_root=data_root,
                            train_size=train_size, epochs=epochs,
                            batch_size=batch_size, seed=seed, lr=lr)
    if base == 'adco':
        cfg.model.num_negatives = num_negatives // {
            'adco': 1, 'adco-K/4': 4, 'adco-K/8': 8}[name]
    elif base == 'mocov2':
        cfg.model.queue_len = num_negatives
    else:
        cfg.model.bank_size = train_size
        cfg.model.head.loss.num_negatives = num_negatives
        cfg.val_dataloader.dataset.indices = 2000  # per-epoch curve only
        cfg.val_dataloader.dataset.data_root = data_root
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                             val_interval=epochs)
    return cfg


def exemplar_run_config(name: str, *, data_root: str, train_size: int,
                        test_size: int, epochs: int, batch_size: int,
                        queue_len: int, seed: int):
    """One run of exemplar_benchmark.py (``queue_len`` for Exemplar-v2 and
    MoCo v2)."""
    if name not in EXEMPLAR_RUNS:
        raise ValueError(f'Unknown Exemplar benchmark run {name!r}; expected '
                         f'one of {EXEMPLAR_RUNS}.')
    cfg = fmnist_run_config(EXEMPLAR_CONFIGS[name], data_root=data_root,
                            train_size=train_size, epochs=epochs,
                            batch_size=batch_size, seed=seed,
                            test_size=test_size)
    if name in ('exemplar', 'mocov2'):
        cfg.model.queue_len = queue_len
    return cfg
