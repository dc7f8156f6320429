from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mm_instdisc.modules import MemoryBank, ShardedMemoryBank
from mm_instdisc.utils import sample_indices

from .embed_predict import EmbedPredictMixin


def build_bank(cfg: Optional[dict], length: int, feat_dim: int,
               momentum: float):
    """NPID's memory bank from ``dict(type=..., **options)`` (or None: a
    replicated ``MemoryBank``)."""
    cfg = dict(cfg or {})
    kind = cfg.pop('type', 'MemoryBank')
    if kind == 'MemoryBank':
        if cfg:
            raise ValueError(f'MemoryBank takes no options besides the '
                             f'model\'s bank_size / feat_dim / bank_momentum, '
                             f'got {sorted(cfg)}.')
        return MemoryBank(length, feat_dim, momentum)
    if kind == 'ShardedMemoryBank':
        allowed = {'dtype', 'seed', 'check_interval'}
        if set(cfg) - allowed:
            raise ValueError(f'Unknown ShardedMemoryBank options '
                             f'{sorted(set(cfg) - allowed)}; expected some of '
                             f'{sorted(allowed)}.')
        return ShardedMemoryBank(length, feat_dim, momentum, **cfg)
    raise ValueError(f"Illegal bank type: {kind!r}; expected 'MemoryBank' or "
                     "'ShardedMemoryBank'.")


@MODELS.register_module()
class NPID(EmbedPredictMixin, BaseSelfSupervisor):
    """NPID: non-parametric instance discrimination with a memory bank.

    `Unsupervised Feature Learning via Non-Parametric Instance Discrimination
    <https://arxiv.org/abs/1805.01978>`_. Part of the design follows
    `lemniscate.pytorch <https://github.com/zhirongw/lemniscate.pytorch>`_.

    The memory bank (one unit row per training image, a persistent buffer)
    is part of the model, so it is in every checkpoint. Each training step
    hands the bank this rank's indices and features; the bank's update
    gathers them from all ranks (a replicated bank applies the same update
    on every rank, so the copies stay identical). The
    update is applied after the optimizer step, because the full-softmax
    backward still reads the bank: ``loss`` leaves it pending and
    :class:`MemoryBankHook` applies it after every iteration (loops without
    a runner call :meth:`flush_bank_update` after each step); a ``loss``
    call over an unapplied update is an error.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config projecting to ``feat_dim`` (e.g.
            ``LinearNeck`` with ``gap_dim=2`` and ``norm_cfg=None``).
        head (dict): ``LossHead`` config whose loss is an ``NPIDLoss``.
        bank_size (int, optional): N, the number of training images. None
            (or ``'auto'``) takes it from the training set:
            :class:`MemoryBankHook` sizes the bank to the data set's length
            before training (and a resumed run refuses a checkpoint whose
            bank has another length). Defaults to None.
        feat_dim (int): D, the embedding size. Defaults to 128.
        bank_momentum (float): Weight kept on the old bank entry (official
            code's convention). Defaults to 0.5.
        bank (dict, optional): The bank's type and its own options:
            ``dict(type='MemoryBank')`` (default: the whole bank on every
            rank, float32) or ``dict(type='ShardedMemoryBank',
            dtype='bfloat16', seed=0)``: rank r of W holds rows
            [r * ceil(N / W), ...) only, in float32 / bfloat16 / float16;
            every mode of the head (exact ``'softmax'``, ``'nce'``,
            ``'sampled_softmax'``) runs across the shards with the values
            and gradients of the replicated bank, and
            ``MemoryBankHook`` puts the whole bank into checkpoints (gathered
            on rank 0), which re-shard themselves on loading.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 bank_size: Optional[Union[int, str]] = None,
                 feat_dim: int = 128, bank_momentum: float = 0.5,
                 bank: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if bank_size in (None, 'auto'):
            self.bank_from_data = True
            bank_size = 1  # placeholder until MemoryBankHook sizes it
        elif isinstance(bank_size, int) and not isinstance(bank_size, bool):
            self.bank_from_data = False
        else:
            raise ValueError(f"Illegal bank_size: {bank_size!r}; expected a "
                             "positive int or None / 'auto' (the number of "
                             'training images).')
        self._bank_args = (bank, feat_dim, bank_momentum)
        self.resize_bank(bank_size)
        self._pending: Optional[Tuple[Tensor, Tensor]] = None

    def resize_bank(self, length: int) -> None:
        """A new memory bank of ``length`` rows (random unit rows), of the
        configured type, on the model's device."""
        cfg, feat_dim, momentum = self._bank_args
        old = getattr(self, 'memory_bank', None)
        bank = build_bank(cfg, length, feat_dim, momentum)
        if old is not None:
            bank.to(old.bank.device)
        self.memory_bank = bank
        # buffers that differ between ranks (a sharded bank's rows): DDP
        # must never broadcast or compare them (torch's
        # DistributedDataParallel reads this attribute)
        self._ddp_params_and_buffers_to_ignore = [
            f'memory_bank.{n}' for n in bank.rank_local_buffers()]

    @torch.no_grad()
    def flush_bank_update(self) -> None:
        """Apply the pending memory-bank update of the last training step."""
        if self._pending is not None:
            idx, feats = self._pending
            self._pending = None
            self.memory_bank.update(idx, feats)

    def loss(self, inputs: List[Tensor],
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """Loss of one view per image against the memory bank.

        Args:
            inputs (list[Tensor]): Views; only the first is used, (B, C, H, W).
            data_samples (list[DataSample]): Must carry ``sample_idx``.

        Returns:
            dict[str, Tensor]: ``loss`` plus ``pos_sim`` (mean cosine between
            a feature and its bank row, a progress indicator) and the loss's
            ``last_stats`` (``log_z``, ``pos_h``, ``neg_h`` for NCE,
            ``pos_prob`` for the softmax modes) for the log.
        """
        if self._pending is not None:
            raise RuntimeError(
                "NPID: the previous step's memory-bank update was never "
                "applied. Add dict(type='MemoryBankHook') to custom_hooks "
                '(it applies the update after each iteration), or call '
                'model.flush_bank_update() after each optimizer step in a '
                'loop of your own.')
        feats = self.embed(inputs)  # (B, D)
        idx = sample_indices(data_samples, feats.device)  # (B, )
        # collective for a bank split across the ranks: every rank calls
        # the loss and the bank with its own batch
        loss = self.head.loss(feats, idx, self.memory_bank)
        with torch.no_grad():
            pos_sim = (feats * self.memory_bank.rows(idx)).sum(1).mean()
        # the bank's update gathers the batches of all ranks itself, so
        # every rank applies the same global update
        self._pending = (idx, feats.detach())
        # the loss's own diagnostics: log Z, pos/neg h (NCE), pos_prob
        stats = getattr(self.head.loss_module, 'last_stats', {})
        return dict(loss=loss, pos_sim=pos_sim, **stats)
