import copy
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from mm_instdisc.utils.checkpoint import unwrap_model


@HOOKS.register_module()
class KNNReferenceHook(Hook):
    """Hands every :class:`KNNMetric` of the evaluator its reference set
    (features and labels of the training images) before each validation and
    test epoch, so that kNN validation during training and ``tools/test.py``
    work for every model.

    * A model with a memory bank (NPID), with ``use_memory_bank=True``: the
      bank is the reference (a sharded bank is gathered on rank 0, where the
      metric is computed), beside the training set's labels.
    * Any other model (AdCo, ExemplarMoCo, mmpretrain's MoCo, SplitMask,
      the parametric baseline), or ``use_memory_bank=False``: the config's
      training set (``train_dataloader.dataset`` with the pipeline of the
      evaluated dataloader) is run through the model on the main process
      only, with a progress bar; the reference is the model's ``embed``
      output, the space of the queries its ``predict`` mode stores (use
      ``tools/knn_eval.py --feature backbone`` for backbone features).

    Args:
        batch_size (int): Batch size of the extraction. Defaults to 256.
        max_samples (int, optional): Use only the first ``max_samples``
            training images (or bank rows) as reference. Defaults to None
            (all).
        use_memory_bank (bool): Use a model's memory bank when it has one.
            Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, batch_size: int = 256,
                 max_samples: Optional[int] = None,
                 use_memory_bank: bool = True) -> None:
        if batch_size <= 0 or (max_samples is not None and max_samples <= 0):
            raise ValueError(f'Illegal KNNReferenceHook sizes: batch_size='
                             f'{batch_size}, max_samples={max_samples}; both '
                             'must be positive.')
        self.batch_size = int(batch_size)
        self.max_samples = max_samples
        self.use_memory_bank = bool(use_memory_bank)
        self._labels: Optional[torch.Tensor] = None

    def _loader(self, runner, eval_loader_cfg):
        from mmengine.dataset import default_collate
        from mmpretrain.registry import DATASETS
        cfg = runner.cfg
        if cfg.get('train_dataloader') is None:
            raise ValueError('KNNReferenceHook takes the reference images from '
                             "the config's train_dataloader, which is "
                             'missing.')
        ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
        ds_cfg.pipeline = copy.deepcopy(eval_loader_cfg.dataset.pipeline)
        if self.max_samples is not None:
            ds_cfg.indices = int(self.max_samples)
        dataset = DATASETS.build(ds_cfg)
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False,
            collate_fn=default_collate)

    def _bank_reference(self, runner, model):
        """All ranks (``gather_to`` is collective for a sharded bank); None
        where the bank's ``gather_to`` gives nothing."""
        from mm_instdisc.evaluation import dataset_labels
        bank = model.memory_bank
        if self._labels is None:
            self._labels = dataset_labels(runner.train_dataloader.dataset)
        if self._labels.numel() != bank.length:
            raise ValueError(f'{self._labels.numel()} training labels for a '
                             f'bank of {bank.length} rows.')
        ref = bank.gather_to(0)  # the whole bank (None off rank 0 when
        if ref is None:  # it is split across the ranks)
            return None
        n = self.max_samples or bank.length
        return ref.float()[:n], self._labels[:n]

    def _feature_reference(self, runner, model, loader_cfg):
        from mm_instdisc.evaluation import extract_features
        if not is_main_process():
            return None
        feats, labels = extract_features(
            model, self._loader(runner, loader_cfg), 'embed',
            desc='kNN reference (training images)')
        if (labels < 0).any():
            raise ValueError('KNNReferenceHook: the training images carry no '
                             'gt_label; a kNN reference needs labels.')
        return feats, labels

    def _give_reference(self, runner, evaluator, loader_cfg) -> None:
        from mm_instdisc.evaluation import KNNMetric
        metrics = [m for m in getattr(evaluator, 'metrics', [])
                   if isinstance(m, KNNMetric)]
        if not metrics:
            return
        model = unwrap_model(runner.model)
        if self.use_memory_bank and hasattr(model, 'memory_bank'):
            ref = self._bank_reference(runner, model)
        else:
            ref = self._feature_reference(runner, model, loader_cfg)
        if ref is not None:
            for m in metrics:
                m.set_reference(*ref)

    def before_val_epoch(self, runner) -> None:
        self._give_reference(runner, runner.val_evaluator,
                             runner.cfg.val_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._give_reference(runner, runner.test_evaluator,
                             runner.cfg.test_dataloader)
