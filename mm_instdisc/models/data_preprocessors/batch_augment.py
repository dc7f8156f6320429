from typing import List, Optional, Sequence, Union

import torch
from mmengine.dist import get_rank
from mmpretrain.models.utils.data_preprocessor import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS
from torch import Tensor

from mm_instdisc.modules.batch_augment import BatchAugment


@MODELS.register_module()
class BatchAugmentPreprocessor(SelfSupDataPreprocessor):
    """Self-supervised data preprocessor that augments the batch on device.

    A thin registered wrapper of :class:`mm_instdisc.modules.BatchAugment`:
    the data pipeline only packs the images (``PackInputs``), and in training
    this preprocessor stacks them, moves them to the model's device, casts
    them to float, applies the per-sample random augmentation (``num_views``
    views) and then the mean/std normalisation. Outside training
    (``training=False``: validation, kNN, test) it only normalises, exactly as
    :class:`SelfSupDataPreprocessor`.

    The augmentation's random stream is two buffers of the model
    (``data_preprocessor.augment.rng_seed`` and ``.rng_calls``), so it is in
    ``model.state_dict()`` and every checkpoint, and resuming one resumes the
    stream exactly. Each rank of a distributed run draws from its own stream
    (``stream=rank``) of the same seed, before and after a resume.

    Config example::

        train_pipeline = [dict(type='PackInputs')]
        model = dict(
            data_preprocessor=dict(
                type='BatchAugmentPreprocessor',
                mean=[125.307, 122.961, 113.8575],
                std=[51.5865, 50.847, 51.255],
                augment=dict(crop_size=32, crop_scale=(0.2, 1.0),
                             grayscale_prob=0.2, saturation=0.4, hue=0.4,
                             jitter_prob=1.0, flip_prob=0.0)))

    Args:
        mean (Sequence[float | int], optional): Pixel mean per channel.
            Defaults to None (no normalisation).
        std (Sequence[float | int], optional): Pixel std per channel.
            Defaults to None.
        augment (dict, optional): ``BatchAugment`` arguments
            (``crop_size`` required); None only normalises.
            Defaults to None.
        to_rgb (bool): Swap BGR to RGB before augmenting (the grayscale and
            saturation weights assume RGB). Defaults to False.
        bgr_to_rgb (bool): Same as ``to_rgb``. Defaults to False.
        rgb_to_bgr (bool): Swap RGB to BGR, after augmenting.
            Defaults to False.
        non_blocking (bool): Copy to the device without blocking.
            Defaults to False.
        **kwargs: Other ``SelfSupDataPreprocessor`` arguments.
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = None,
                 std: Optional[Sequence[Union[float, int]]] = None,
                 augment: Optional[dict] = None,
                 to_rgb: bool = False,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 non_blocking: bool = False,
                 **kwargs) -> None:
        super().__init__(
            mean=mean,
            std=std,
            to_rgb=to_rgb,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            non_blocking=non_blocking,
            **kwargs)
        self.rgb_to_bgr = rgb_to_bgr
        self.augment: Optional[BatchAugment] = None
        self.rank = get_rank()
        if augment is not None:
            self.augment = BatchAugment(**{'stream': self.rank, **augment})

    def _stack(self, inputs: Union[Tensor, List[Tensor]]) -> List[Tensor]:
        """Batches to augment: one (B, C, H, W) per source view."""
        if isinstance(inputs, Tensor):
            return [inputs]
        if all(t.dim() == 3 for t in inputs):  # pseudo_collate: per sample
            return [torch.stack(list(inputs))]
        return list(inputs)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Augment (training only), then normalise.

        Args:
            data (dict): ``inputs``: uint8/float tensor (B, C, H, W), a list
                of per-sample (C, H, W) tensors, or a list of views
                (B, C, H, W); ``data_samples``.
            training (bool): Augment only when True.

        Returns:
            dict: ``inputs``: in training, a list of ``num_views`` float
            tensors (B, C, h, w) (one per given view if the input already
            holds ``num_views`` views); else as ``SelfSupDataPreprocessor``.
            ``data_samples`` unchanged.
        """
        if not training or self.augment is None:
            return super().forward(data, training)
        data = self.cast_data(data)
        views = self._stack(data['inputs'])
        num_views = self.augment.num_views
        # the colour ops see RGB: swap BGR input before, RGB output after
        swap_after = self._channel_conversion and self.rgb_to_bgr
        if self._channel_conversion and not swap_after:
            views = [v[:, [2, 1, 0], ...] for v in views]
        if len(views) == 1:
            views = self.augment(views[0])
        elif len(views) == num_views:
            # views made by the pipeline: augment each one once
            views = [self._augment_once(v) for v in views]
        else:
            raise ValueError(
                f'Got {len(views)} input views but augment.num_views='
                f'{num_views}; pass one batch or exactly num_views views.')
        if swap_after:
            views = [v[:, [2, 1, 0], ...] for v in views]
        if self._enable_normalize:
            views = [(v - self.mean) / self.std for v in views]
        return {'inputs': views, 'data_samples': data.get('data_samples')}

    def _augment_once(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        aug = self.augment
        assert aug is not None
        return aug.transform(x, aug.sample_params(B, H, W))
