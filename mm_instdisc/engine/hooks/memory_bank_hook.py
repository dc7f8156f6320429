from typing import Optional, Sequence

import torch
from mmengine.dataset import DefaultSampler, default_collate
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch.utils.data import DataLoader

from mm_instdisc.modules.memory_bank import check_replicas_equal
from mm_instdisc.utils import sample_indices
from mm_instdisc.utils.checkpoint import unwrap_model

from ._checkpoint import (checkpoint_after_this_epoch,
                          checkpoint_after_this_iter)


@HOOKS.register_module()
class MemoryBankHook(Hook):
    """Initialise, synchronise, update and report NPID's memory bank.

    * ``before_run``: a bank sized from the data (``NPID(bank_size=None)``)
      gets one row per training image.
    * ``after_load_checkpoint`` (resume): refuses a checkpoint whose bank
      has another number of rows than the training set has images (the
      image folder changed since it was written).
    * ``before_train``: checks that the bank has one row per training image,
      then (on a fresh run, not on resume) initialises it either with random
      unit rows or with one forward pass over the training set, and makes
      every rank's bank identical (broadcast from rank 0).
    * ``after_train_iter``: applies the step's bank update (after the
      optimizer step; this hook is the one place that applies it, through
      ``NPID.flush_bank_update``) and logs bank statistics every
      ``log_interval`` iterations (``bank_norm_min``/``max``,
      ``bank_mean_norm``).

    kNN validation against the bank is :class:`KNNReferenceHook`'s job.

    The hook talks to the bank through the interface both banks share
    (``fill``, ``stats``, ``broadcast_from``, ``check_sync``,
    ``checkpoint_state``) and never asks which one it has. With a
    ``ShardedMemoryBank`` (``NPID(bank=dict(type='ShardedMemoryBank',
    ...))``) each rank holds its rows only: the random initialisation is
    already the same bank for any number of ranks (its ``broadcast_from``
    does nothing), the forward initialisation writes each rank's rows,
    statistics are reduced over the shards, and before every checkpoint the
    shards are gathered on rank 0, which writes the whole bank (checkpoints
    are written by rank 0 alone); loading re-shards it, for any number of
    ranks. The sync check does not apply (the shards differ by design).

    Args:
        init (str): ``'random'`` or ``'forward'``. Defaults to ``'random'``.
        init_batch_size (int, optional): Batch size of the initial forward
            pass. Defaults to the training batch size.
        log_interval (int): Iterations between bank statistics. Defaults to 50.
        sync_check_interval (int): If > 0, every that many iterations the
            ranks compare checksums of their banks and raise if they differ
            (a debugging aid; costs one tiny all-gather). Defaults to 0.
    """

    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW)

    def __init__(self, init: str = 'random',
                 init_batch_size: Optional[int] = None,
                 log_interval: int = 50,
                 sync_check_interval: int = 0) -> None:
        if init not in ('random', 'forward'):
            raise ValueError(f"Illegal init: {init!r}; expected 'random' or "
                             "'forward'.")
        self.init = init
        self.init_batch_size = init_batch_size
        self.log_interval = log_interval
        self.sync_check_interval = sync_check_interval
        # the bank's whole-bank state entries for the next checkpoint
        self._bank_state: Optional[dict] = None

    @staticmethod
    def _model(runner):
        model = unwrap_model(runner.model)
        if not hasattr(model, 'memory_bank'):
            raise TypeError(f'MemoryBankHook needs a model with a '
                            f'`memory_bank` (e.g. NPID), got '
                            f'{type(model).__name__}.')
        return model

    def before_run(self, runner) -> None:
        model = self._model(runner)
        if not getattr(model, 'bank_from_data', False):
            return
        n = len(runner.train_dataloader.dataset)
        if model.memory_bank.length != n:
            model.resize_bank(n)
            runner.logger.info(f'MemoryBankHook: memory bank sized from the '
                               f'training set: {n} rows')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # weights only (load_from): the bank may differ
        state = checkpoint.get('state_dict', {})
        bank = state.get('memory_bank.bank')
        if bank is None:
            return
        shard = state.get('memory_bank.shard')
        rows = int(shard[2]) if shard is not None else bank.shape[0]
        n = len(runner.train_dataloader.dataset)
        if rows != n:
            raise ValueError(
                f'Cannot resume: the checkpoint\'s memory bank has {rows} rows '
                f'(one per training image when it was written), the training '
                f'set now has {n} images. The image folder changed since the '
                'checkpoint was written: resume with the same images, or '
                'start a new run (load_from=CHECKPOINT, resume=False, keeps '
                'the weights and builds a new bank).')

    def before_train(self, runner) -> None:
        model = self._model(runner)
        dataset = runner.train_dataloader.dataset
        if len(dataset) != model.memory_bank.length:
            raise ValueError(
                f'Memory bank length {model.memory_bank.length} != training '
                f'set size {len(dataset)}: set model.bank_size='
                f'{len(dataset)} in the config, or bank_size=None to take '
                'it from the data.')
        if runner.iter > 0:  # resumed: the bank came with the checkpoint
            runner.logger.info('MemoryBankHook: bank restored from checkpoint')
            return
        if self.init == 'forward':
            self._init_forward(runner, model, dataset)
        model.memory_bank.broadcast_from(0)  # identical copies, if any
        runner.logger.info(f'MemoryBankHook: bank initialised ({self.init}), '
                           f'{model.memory_bank.stats()}')

    @torch.no_grad()
    def _init_forward(self, runner, model, dataset) -> None:
        from mm_instdisc.evaluation import iter_features
        loader_cfg = runner.cfg.get('train_dataloader', {})
        bs = self.init_batch_size or loader_cfg.get('batch_size', 64)
        loader = DataLoader(
            dataset, batch_size=bs,
            sampler=DefaultSampler(dataset, shuffle=False, round_up=False),
            num_workers=loader_cfg.get('num_workers', 0),
            collate_fn=default_collate)
        for i, (feats, samples) in enumerate(
                iter_features(model, loader, 'embed', progress=False)):
            idx = sample_indices(samples, feats.device)
            # collective: the bank gathers every rank's batch itself (ranks
            # may hold different numbers of samples: no round-up)
            model.memory_bank.fill(idx, feats)
            if i % 50 == 0:
                runner.logger.info(f'MemoryBankHook: initial forward pass '
                                   f'{i + 1}/{len(loader)} batches')

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        model = self._model(runner)
        model.flush_bank_update()
        if self.every_n_train_iters(runner, self.log_interval):
            for k, v in model.memory_bank.stats().items():
                runner.message_hub.update_scalar(f'train/bank_{k}', v)
        if self.sync_check_interval > 0 and self.every_n_train_iters(
                runner, self.sync_check_interval):
            model.memory_bank.check_sync()  # a no-op for a sharded bank
        if checkpoint_after_this_iter(runner):
            self._gather_for_checkpoint(model)

    def after_train_epoch(self, runner) -> None:
        if checkpoint_after_this_epoch(runner):
            self._gather_for_checkpoint(self._model(runner))

    def _gather_for_checkpoint(self, model) -> None:
        """All ranks (collective for a sharded bank): the entries that make
        the checkpoint rank 0 is about to write (after this hook, VERY_LOW
        priority) hold the whole bank."""
        self._bank_state = model.memory_bank.checkpoint_state()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rank 0: put the whole (gathered) bank into the checkpoint."""
        bank = self._model(runner).memory_bank
        entries, self._bank_state = self._bank_state, None
        if entries is None:  # not gathered: fine where no gather is needed
            entries = bank.checkpoint_state(collective=False)
        if entries is None:
            runner.logger.warning(
                'MemoryBankHook: a checkpoint is being written where the '
                'sharded bank was not gathered (not by CheckpointHook?): it '
                "holds rank 0's rows only; resuming from it fails on the "
                'other ranks with an error naming the missing rows.')
            return
        state = checkpoint.get('state_dict', {})
        for key, value in entries.items():
            state[f'memory_bank.{key}'] = value

    @staticmethod
    def check_sync(bank: torch.Tensor) -> None:
        """Raise if the ranks' copies of ``bank`` differ (exact checksums;
        :func:`~mm_instdisc.modules.memory_bank.check_replicas_equal`)."""
        check_replicas_equal(bank)
