import copy
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class KNNReferenceHook(Hook):
    """Hands :class:`KNNMetric` a reference set: the model's features of the
    training images, extracted with the evaluation pipeline.

    For models without a memory bank (AdCo, ExemplarMoCo, mmpretrain's MoCo,
    SplitMask), so that kNN validation during training and
    ``tools/test.py`` work as for NPID (whose reference is its bank, handed
    over by :class:`MemoryBankHook`). Before every validation and test epoch
    the training set of the config (``train_dataloader.dataset`` with the
    pipeline of the evaluated dataloader) is run through the model on the
    main process only (the metric is computed there), with a progress bar.

    The reference features are the model's ``embed`` output, the same space
    as the queries that its ``predict`` mode stores (use
    ``tools/knn_eval.py --feature backbone`` for backbone features).

    Args:
        batch_size (int): Batch size of the extraction. Defaults to 256.
        max_samples (int, optional): Use only the first ``max_samples``
            training images as reference. Defaults to None (all).
    """

    priority = 'NORMAL'

    def __init__(self, batch_size: int = 256,
                 max_samples: Optional[int] = None) -> None:
        if batch_size <= 0 or (max_samples is not None and max_samples <= 0):
            raise ValueError(f'Illegal KNNReferenceHook sizes: batch_size='
                             f'{batch_size}, max_samples={max_samples}; both '
                             'must be positive.')
        self.batch_size = int(batch_size)
        self.max_samples = max_samples

    def _loader(self, runner, eval_loader_cfg):
        import torch
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

    def _give_reference(self, runner, evaluator, loader_cfg) -> None:
        from mm_instdisc.apis import extract_features
        from mm_instdisc.evaluation import KNNMetric
        metrics = [m for m in getattr(evaluator, 'metrics', [])
                   if isinstance(m, KNNMetric)]
        if not metrics or not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        feats, labels = extract_features(
            model, self._loader(runner, loader_cfg), 'embed',
            desc='kNN reference (training images)')
        if (labels < 0).any():
            raise ValueError('KNNReferenceHook: the training images carry no '
                             'gt_label; a kNN reference needs labels.')
        for m in metrics:
            m.set_reference(feats, labels)

    def before_val_epoch(self, runner) -> None:
        self._give_reference(runner, runner.val_evaluator,
                             runner.cfg.val_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._give_reference(runner, runner.test_evaluator,
                             runner.cfg.test_dataloader)
