from typing import List, Optional, Sequence, Tuple, Union

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from mm_instdisc.modules.splitmask import MASK_MODES, SplitMaskGenerator

from .batch_augment import BatchAugmentPreprocessor

#: the data-sample fields holding an image's two patch sets
MASK_FIELDS = ('split_ids_a', 'split_ids_b')
#: ``mask`` when none is given: BEiT's blocks (for 14x14 grids)
DEFAULT_MASK = dict(mode='block', min_block_patches=16)


@MODELS.register_module()
class SplitMaskPreprocessor(BatchAugmentPreprocessor):
    """SplitMask's data preprocessor: normalises (and, with ``augment``,
    augments) the batch as :class:`BatchAugmentPreprocessor`, then, in
    training, draws every image's split into patch sets A and B for the
    whole batch at once (:class:`mm_instdisc.modules.SplitMaskGenerator`)
    and puts them in the data samples (``split_ids_a`` (L_A, ) and
    ``split_ids_b`` (L_B, ), sorted patch indices), where mmpretrain's
    masked-image models find their masks.

    The patch grid is the model's: ``SplitMask`` sets it from its backbone
    (:meth:`set_grid`); ``mask`` holds the rest. The masks come from the
    global torch RNG (checkpointed by ``RandomStateHook``), drawn after the
    augmentation, which has its own stream.

    Config example::

        data_preprocessor=dict(
            type='SplitMaskPreprocessor', mean=[72.94], std=[90.02],
            mask=dict(mode='block', ratio=0.5, min_block_patches=4))

    Args:
        mask (dict, optional): ``SplitMaskGenerator`` arguments except the
            grid: ``mode`` (``'block'``, the paper's default, or
            ``'uniform'``), ``ratio`` (fraction of the patches in A; None:
            0.5 for block, 0.25 for uniform), ``min_block_patches`` (16 for
            BEiT's 14x14 grid; use 4 for small grids), ``min_aspect``; a
            ``grid`` given here must match the backbone's. Defaults to
            ``dict(mode='block', min_block_patches=16)`` (BEiT's blocks,
            the default of a ``SplitMask`` without a preprocessor).
        **kwargs: :class:`BatchAugmentPreprocessor` arguments (``mean``,
            ``std``, ``augment``, ...).
    """

    def __init__(self, mask: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mask_cfg = dict(mask or DEFAULT_MASK)
        self.mask_generator: Optional[SplitMaskGenerator] = None
        if 'grid' in self.mask_cfg:
            self.set_grid(self.mask_cfg['grid'])
        else:  # the mode and ratio now; the ratio's size on the grid later
            ratio = self.mask_cfg.get('ratio')
            if ratio is not None and not 0.0 < float(ratio) < 1.0:
                raise ValueError(f'SplitMaskPreprocessor: illegal mask ratio '
                                 f'{ratio}; expected (0, 1).')
            mode = self.mask_cfg.get('mode', 'block')
            if mode not in MASK_MODES:
                raise ValueError(f'Illegal mask mode: {mode!r}; expected one '
                                 f'of {MASK_MODES}.')

    def set_grid(self, grid: Union[int, Sequence[int]]) -> None:
        """Build the mask generator for the backbone's patch ``grid``."""
        cfg = dict(self.mask_cfg)
        given = cfg.pop('grid', None)
        gen = SplitMaskGenerator(grid, **cfg)
        mine = None if given is None else SplitMaskGenerator(given, **cfg)
        if mine is not None and (mine.height, mine.width) != (gen.height,
                                                              gen.width):
            raise ValueError(
                f'SplitMaskPreprocessor: mask grid {given} differs from the '
                f'backbone patch grid {(gen.height, gen.width)}; leave '
                'mask.grid out, the model sets it.')
        self.mask_generator = gen

    def draw(self, batch_size: int, device=None) -> Tuple[Tensor, Tensor]:
        """Sorted patch indices of A (B, L_A) and B (B, L_B) of a batch."""
        if self.mask_generator is None:
            raise RuntimeError(
                'SplitMaskPreprocessor has no patch grid: build it inside a '
                'SplitMask model (which sets it from its backbone) or give '
                'mask.grid.')
        return self.mask_generator(batch_size, device=device)

    def forward(self, data: dict, training: bool = False) -> dict:
        """As :class:`BatchAugmentPreprocessor`; in training the data samples
        also get ``split_ids_a`` / ``split_ids_b``."""
        data = super().forward(data, training)
        if not training:
            return data
        inputs = data['inputs']
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        samples: Optional[List[DataSample]] = data.get('data_samples')
        if samples is None:
            samples = [DataSample() for _ in range(first.shape[0])]
        ids_a, ids_b = self.draw(len(samples), device=first.device)
        for i, sample in enumerate(samples):
            sample.set_field(ids_a[i], MASK_FIELDS[0])
            sample.set_field(ids_b[i], MASK_FIELDS[1])
        return {**data, 'data_samples': samples}
