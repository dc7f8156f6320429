import copy
from typing import List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

SUBSET_MODES = ('balanced', 'stratified')


@DATASETS.register_module()
class ClassBalancedSubset:
    """A fixed, class-balanced labelled subset of a dataset (semi-supervised).

    Semi-supervised fine-tuning uses 1% or 10% of the labels. The subset here
    has the same number of images in every class, chosen at random with
    ``seed`` among that class's images: the same dataset, fraction and seed
    always give the same indices (listed in :attr:`indices`), whatever the
    number of workers or processes.

    With ``fraction``, each class gets ``round(fraction * len(dataset) /
    C)`` images (C = classes present; Fashion-MNIST 1% = 60 per class,
    ImageNet 1% = 13 per class); with ``num_per_class`` it gets that many. A
    class with fewer images than asked for contributes all it has.

    With ``mode='stratified'`` the subset keeps the class proportions
    instead: class c (of n_c images) gets ``max(1, round(fraction * n_c))``
    of its images (your own, unbalanced folders: that share of every class).

    Args:
        dataset (BaseDataset | dict): The full dataset or its config. Must
            have ``get_gt_labels()`` or ``gt_label`` in ``get_data_info(i)``.
        fraction (float, optional): Share of the dataset to keep, in (0, 1].
            Give this or ``num_per_class``.
        num_per_class (int, optional): Images per class.
        seed (int): Seed of the choice. Defaults to 0.
        lazy_init (bool): Choose the subset on first use rather than now.
            Defaults to False.
        mode (str): ``'balanced'`` (the same number per class) or
            ``'stratified'`` (the same share of every class; needs
            ``fraction``). Defaults to ``'balanced'``.

    Example:
        >>> train_dataloader = dict(dataset=dict(  # doctest: +SKIP
        ...     type='ClassBalancedSubset', fraction=0.01, seed=0,
        ...     dataset=dict(type='FashionMNISTIDX', data_root='...',
        ...                  split='train', pipeline=[...])))
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 fraction: Optional[float] = None,
                 num_per_class: Optional[int] = None,
                 seed: int = 0,
                 lazy_init: bool = False,
                 mode: str = 'balanced') -> None:
        if (fraction is None) == (num_per_class is None):
            raise ValueError('Give exactly one of fraction and num_per_class, '
                             f'got fraction={fraction!r}, '
                             f'num_per_class={num_per_class!r}.')
        if fraction is not None and not 0 < fraction <= 1:
            raise ValueError(f'Illegal fraction: {fraction!r}; expected a '
                             'share in (0, 1], e.g. 0.01 for 1%.')
        if num_per_class is not None and (not isinstance(num_per_class, int)
                                          or num_per_class < 1):
            raise ValueError(f'Illegal num_per_class: {num_per_class!r}; '
                             'expected an integer >= 1.')
        if mode not in SUBSET_MODES:
            raise ValueError(f'Illegal mode: {mode!r}; expected one of '
                             f'{SUBSET_MODES}.')
        if mode == 'stratified' and fraction is None:
            raise ValueError("mode='stratified' keeps a share of every "
                             'class: give fraction, not num_per_class.')
        self.mode = mode
        if isinstance(dataset, dict):
            dataset = DATASETS.build(copy.deepcopy(dataset))
        self.dataset = dataset
        self.fraction = fraction
        self.num_per_class = num_per_class
        self.seed = int(seed)
        self.indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(self.dataset.metainfo)

    def _labels(self) -> np.ndarray:
        if hasattr(self.dataset, 'get_gt_labels'):
            return np.asarray(self.dataset.get_gt_labels(), dtype=np.int64)
        return np.asarray([
            int(self.dataset.get_data_info(i)['gt_label'])
            for i in range(len(self.dataset))
        ], dtype=np.int64)

    def full_init(self) -> None:
        """Load the wrapped dataset's labels and choose the subset."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labels = self._labels()
        classes = np.unique(labels)
        if len(classes) == 0:
            raise ValueError('ClassBalancedSubset: the wrapped dataset is '
                             'empty.')
        if self.num_per_class is not None:
            per_class = self.num_per_class
        else:
            per_class = max(1, int(round(self.fraction * len(labels) /
                                         len(classes))))
        rng = np.random.default_rng(self.seed)
        chosen = []
        for c in classes:  # ascending, so the draw order is fixed
            members = np.flatnonzero(labels == c)
            n = min(per_class, len(members))
            if self.mode == 'stratified':
                n = max(1, int(round(self.fraction * len(members))))
            chosen.append(rng.choice(members, size=n, replace=False))
        self.indices = sorted(int(i) for i in np.concatenate(chosen))
        self.num_per_class_chosen = per_class
        self._fully_initialized = True

    def get_gt_labels(self) -> np.ndarray:
        """Labels of the subset, in subset order."""
        self.full_init()
        return self._labels()[self.indices]

    def get_data_info(self, idx: int) -> dict:
        """Annotation of the ``idx``-th image of the subset."""
        self.full_init()
        return self.dataset.get_data_info(self.indices[idx])

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        self.full_init()
        return len(self.indices)

    def __repr__(self) -> str:
        how = (f'fraction={self.fraction}' if self.fraction is not None else
               f'num_per_class={self.num_per_class}')
        size = len(self.indices) if self._fully_initialized else '?'
        if self.mode != 'balanced':
            how += f', mode={self.mode!r}'
        return (f'ClassBalancedSubset({how}, seed={self.seed}, size={size}, '
                f'of {type(self.dataset).__name__})')
