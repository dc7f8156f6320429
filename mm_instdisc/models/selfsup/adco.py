from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mm_instdisc.modules import AdversarialNegatives, gather_rows

from .embed_predict import EmbedPredictMixin, MomentumEncoderMixin


@MODELS.register_module()
class AdCo(MomentumEncoderMixin, EmbedPredictMixin, BaseSelfSupervisor):
    """AdCo: contrastive learning against self-trained negative adversaries.

    `AdCo: Adversarial Contrast for Efficient Learning of Unsupervised
    Representations from Self-Trained Negative Adversaries
    <https://arxiv.org/abs/2011.08435>`_ (CVPR 2021). Part of the design
    follows the official code `maple-research-lab/AdCo
    <https://github.com/maple-research-lab/AdCo>`_ and mmpretrain's ``MoCo``.

    A MoCo-v2 pair (query encoder = backbone + neck, key encoder = its
    exponential moving average, keys batch-shuffled across ranks for BN)
    and K learned negatives (:class:`AdversarialNegatives`, a parameter
    ``negatives.weight`` of shape (D, K)). Each step the encoder descends on
    the contrastive loss at ``head.loss.temperature`` and the negatives ascend on
    it at ``head.loss.mem_temperature``. Both gradients come from one backward:
    the returned ``loss`` has the value of the encoder loss, plus the
    negatives' loss minus its detached copy (value 0, gradient that of the
    negatives' loss). The optimizer ascends the negatives:
    ``AdversarialNegativesOptimWrapper`` (``optim_wrapper=dict(constructor=
    'AdversarialNegativesOptimWrapperConstructor', negatives_lr=3.0, ...)``
    over any optim wrapper type) gives them their own ascending param group
    with lr, momentum and weight decay held against the param schedulers,
    and ``AdCoNegativesInitHook`` runs the initialisation phase (frozen
    negatives, filled from keys).
    As a parameter of the DDP-wrapped model the negatives' gradient is
    averaged over ranks by DDP, as the official code's explicit all-reduce
    does, and every rank applies the same step.

    Keys are all-gathered, so the positive of a query is at row
    ``rank * B + i`` of the global keys and the other keys of the global
    batch are negatives too (``head.loss.batch_negatives``).

    Initialisation from keys (``negatives_init='keys'``, official default):
    until all K columns are filled, training runs the official code's
    initialisation phase: the loss uses only each query's own key as
    positive and the (partly filled) negatives, the negatives are not
    updated by the optimizer (``AdCoNegativesInitHook`` sets the wrapper's
    ``negatives_frozen``: lr, momentum and weight decay 0 for those steps),
    and after each step the
    all-gathered keys fill the next columns (the hook writes them; a
    ``loss`` over unwritten keys is an error). When the
    last column is filled, the key encoder is reset to the query encoder,
    as in the official code. These iterations (K / global batch size, e.g.
    256 for 65536 and 256) count as ordinary training iterations here,
    whereas the official code runs them before epoch 0.

    Views (``inputs``): without ``multi_crop`` exactly two, view 0 for the
    query and view 1 for the key (with ``symmetric`` both for both). With
    ``multi_crop`` view 0 is the key crop (224 px in the official recipe)
    and every further view is a query crop (224/192/160/128/96 px); the
    losses of the query crops are summed, as in the official code.
    ``symmetric`` and ``multi_crop`` cannot be combined (nor can they in the
    official code).

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config projecting to ``feat_dim`` (``MoCoV2Neck``).
        head (dict): ``LossHead`` config whose loss is an ``AdCoLoss``
            (temperatures, batch negatives).
        num_negatives (int): K. Defaults to 65536.
        feat_dim (int): D, the embedding size. Defaults to 128.
        momentum (float): Weight of the *new* parameters in the key
            encoder's moving average (mmpretrain's convention; 0.001 is the
            official m = 0.999). Defaults to 0.001.
        symmetric (bool): Symmetrised loss. Defaults to False.
        multi_crop (bool): Multi-crop queries. Defaults to False.
        negatives_init (str): ``'keys'`` or ``'random'``. Defaults to
            ``'keys'``.
        reset_key_encoder (bool): Reset the key encoder to the query encoder
            when the last column of the negatives is filled from keys (the
            official code's behaviour). Off, the key encoder keeps its moving
            average, so the negatives (keys of that encoder) stay within the
            queries' reach: on Fashion-MNIST the reset moves the queries away
            from them at once (softmax mass on the negatives 0.00 from the
            first epoch) and the ascent then has no gradient to work with
            (``configs/adco/adco_resnet18-w32s2_1xb256-bf16-cos-15min_``
            ``fashion-mnist.py``). Defaults to True.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 num_negatives: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.001, symmetric: bool = False,
                 multi_crop: bool = False, negatives_init: str = 'keys',
                 reset_key_encoder: bool = True,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if symmetric and multi_crop:
            raise ValueError('AdCo: symmetric=True and multi_crop=True cannot '
                             'be combined (the official code does not '
                             'define it either).')
        self.check_momentum(momentum)
        super().__init__(backbone=backbone, neck=neck, head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.symmetric = bool(symmetric)
        self.multi_crop = bool(multi_crop)
        self.reset_key_encoder_after_init = bool(reset_key_encoder)
        self.build_key_encoder(momentum)
        self.negatives = AdversarialNegatives(num_negatives, feat_dim,
                                              init=negatives_init)
        self._pending_keys: Optional[Tensor] = None

    # ------------------------------------------------------------ encoders
    @torch.no_grad()
    def flush_negatives_init(self) -> int:
        """Write the last step's keys into the negatives (initialisation).

        Called after the optimizer step by ``AdCoNegativesInitHook`` (a
        loop of one's own calls it after each step). Returns the number of
        columns
        written; resets the key encoder when the last column is filled
        (unless built with ``reset_key_encoder=False``).
        """
        if self._pending_keys is None:
            return 0
        keys, self._pending_keys = self._pending_keys, None
        n = self.negatives.init_from_keys(keys)
        if (n and self.negatives.initialised
                and self.reset_key_encoder_after_init):
            self.reset_key_encoder()
        return n

    # ---------------------------------------------------------------- loss
    def _check_views(self, inputs: List[Tensor]) -> None:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError('AdCo expects a list of views (use the '
                             "'MultiView' transform), got a "
                             f'{type(inputs).__name__}.')
        if self.multi_crop and len(inputs) < 2:
            raise ValueError('AdCo with multi_crop needs a key view and at '
                             f'least one query view, got {len(inputs)} views.')
        if not self.multi_crop and len(inputs) != 2:
            raise ValueError(f'AdCo expects 2 views, got {len(inputs)}; set '
                             'multi_crop=True for multi-crop pipelines.')

    def _gather(self, k: Tensor) -> Tuple[Tensor, int]:
        """All-gathered keys (M, D) and the row of this rank's first key."""
        return gather_rows(k)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Both players' losses of a batch of views.

        Args:
            inputs (list[Tensor]): Views, each of shape (B, C, H, W).
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss`` (value: the encoder loss at t;
            gradient w.r.t. the negatives: that of the loss at mem_t),
            ``adv_ce``, the negatives' loss at mem_t, and ``neg_prob``, the
            softmax mass at mem_t on the negatives (first query view; near
            0 means the negatives get no gradient), ``neg_sim_max``,
            ``neg_sim_mean`` and ``pos_sim`` (cosines of the queries to
            their closest negative, to a negative on average and to their
            positive; see ``AdCoLoss.negatives_stats``). All but ``loss``
            are logged only.
        """
        if self._pending_keys is not None:
            raise RuntimeError(
                "AdCo: the previous step's keys were never written into the "
                "negatives. Add dict(type='AdCoNegativesInitHook') to "
                'custom_hooks (it writes them after each iteration and checks '
                'that the optimizer ascends the negatives), or call '
                'model.flush_negatives_init() after each optimizer step in a '
                'loop of your own.')
        self._check_views(inputs)
        self.encoder_k.update_parameters(
            self.query_encoder)
        w_hat = self.negatives()  # (D, K)

        if not self.negatives.initialised:
            # official initialisation phase: own key only, keys fill W
            q_view, k_view = (1, 0) if self.multi_crop else (0, 1)
            q = self.embed(inputs[q_view])  # (B, D)
            k_all, offset = self._gather(self.keys(inputs[k_view]))  # (M, D)
            enc, adv = self.head.loss(q, k_all, w_hat, offset,
                                      batch_negatives=False)
            self._pending_keys = k_all
            probe = (q, k_all, offset, False)
        elif self.multi_crop:
            k_all, offset = self._gather(self.keys(inputs[0]))
            enc = adv = None
            for view in inputs[1:]:
                q = self.embed(view)
                e, a = self.head.loss(q, k_all, w_hat, offset)
                enc = e if enc is None else enc + e
                adv = a if adv is None else adv + a
                if view is inputs[1]:
                    probe = (q, k_all, offset, None)
        elif self.symmetric:
            q1, q2 = self.embed(inputs[0]), self.embed(inputs[1])
            k1_all, offset = self._gather(self.keys(inputs[0]))
            k2_all, _ = self._gather(self.keys(inputs[1]))
            enc, adv = self.head.loss_module.symmetric(
                q1, q2, k1_all, k2_all, w_hat, offset)
            probe = (q1, k2_all, offset, None)
        else:
            q = self.embed(inputs[0])
            k_all, offset = self._gather(self.keys(inputs[1]))
            enc, adv = self.head.loss(q, k_all, w_hat, offset)
            probe = (q, k_all, offset, None)

        q, k_all, offset, batch_negatives = probe
        stats = self.head.loss_module.negatives_stats(
            q.detach(), k_all, w_hat.detach(), offset, batch_negatives)
        loss = enc + (adv - adv.detach())
        return dict(loss=loss, adv_ce=adv.detach(), **stats)
