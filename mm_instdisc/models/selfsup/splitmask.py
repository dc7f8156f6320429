from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import (build_2d_sincos_position_embedding,
                                     resize_pos_embed)
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mm_instdisc.modules import gather_rows
from mm_instdisc.modules.splitmask import (SplitMaskGenerator,
                                           SplitMaskTokenizer, splitmask_step)
from mm_instdisc.utils.checkpoint import read_checkpoint

from ..data_preprocessors.splitmask import MASK_FIELDS, SplitMaskPreprocessor
from .embed_predict import EmbedPredictMixin

# the training-free tokeniser is plain PyTorch; register it as it is so that
# configs build it as ``target_generator=dict(type='SplitMaskTokenizer')``
MODELS.register_module(name='SplitMaskTokenizer', module=SplitMaskTokenizer)


def check_divisible(size: Sequence[int], patch_size: Sequence[int],
                    who: str) -> None:
    """Raise a ValueError naming both sizes unless patches tile the image."""
    h, w = int(size[0]), int(size[1])
    ph, pw = int(patch_size[0]), int(patch_size[1])
    if h % ph or w % pw:
        raise ValueError(
            f'{who}: image size {h}x{w} is not divisible by the patch size '
            f'{ph}x{pw}; resize or crop the images (or pad, as mmdet\'s '
            f'pad_size_divisor does) to a multiple of the patch size.')


@MODELS.register_module()
class SplitMaskViT(VisionTransformer):
    """Vision Transformer that can encode a subset of its patches.

    Encoder of `SplitMask <https://arxiv.org/abs/2112.10740>`_. With
    ``ids`` it embeds all patches, adds their position embeddings, keeps
    only the patches ``ids`` (no mask tokens), prepends the class token and
    runs the transformer on these ``1 + K`` tokens. Without ``ids`` it is
    mmpretrain's ``VisionTransformer`` (``out_type`` applies), so the same
    weights serve fine-tuning and detection. Unlike ``VisionTransformer``
    (whose patch embedding pads silently), an image whose size is not a
    multiple of the patch size is refused with a ValueError.

    Args:
        arch (str | dict): ViT architecture, as in ``VisionTransformer``
            (``'deit-small'`` = ViT-S, ``'base'`` = ViT-B). Defaults to
            ``'deit-small'``.
        img_size (int | tuple): Input size. Defaults to 224.
        patch_size (int): Patch side. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (Sequence | int): Output layers (full-image mode).
            Defaults to -1.
        drop_rate (float): Dropout rate. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        qkv_bias (bool): Bias of qkv. Defaults to True.
        norm_cfg (dict, optional): Norm config; None for LN (eps 1e-6).
        final_norm (bool): Norm after the last layer. Defaults to True.
        out_type (str): Output of full-image mode. Defaults to ``'raw'``.
        interpolate_mode (str): Position embedding resize mode. Defaults to
            ``'bicubic'``.
        layer_scale_init_value (float): Layer scale (BEiT uses 0.1).
            Defaults to 0.
        sincos_pos_embed (bool): Fixed 2D sin-cos position embedding (as
            MAE) instead of a learned one. Defaults to True.
        frozen_stages (int): Frozen stages. Defaults to -1.
        patch_cfg (dict, optional): Patch embedding config.
        layer_cfgs (dict, optional): Transformer layer config.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'deit-small',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_indices: Union[Sequence[int], int] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 norm_cfg: Optional[dict] = None,
                 final_norm: bool = True,
                 out_type: str = 'raw',
                 interpolate_mode: str = 'bicubic',
                 layer_scale_init_value: float = 0.,
                 sincos_pos_embed: bool = True,
                 frozen_stages: int = -1,
                 patch_cfg: Optional[dict] = None,
                 layer_cfgs: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(img_size, int):
            size = (img_size, img_size)
        else:
            size = tuple(img_size)
        check_divisible(size, (patch_size, patch_size), 'SplitMaskViT')
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            in_channels=in_channels,
            out_indices=list(out_indices) if isinstance(
                out_indices, (list, tuple)) else out_indices,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias,
            norm_cfg=norm_cfg or dict(type='LN', eps=1e-6),
            final_norm=final_norm,
            out_type=out_type,
            with_cls_token=True,
            frozen_stages=frozen_stages,
            interpolate_mode=interpolate_mode,
            layer_scale_init_value=layer_scale_init_value,
            patch_cfg=patch_cfg or dict(),
            layer_cfgs=layer_cfgs or dict(),
            init_cfg=init_cfg)
        self.patch_size = (int(patch_size), int(patch_size))
        self.sincos_pos_embed = bool(sincos_pos_embed)
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        if self.sincos_pos_embed:
            self.pos_embed.requires_grad = False

    def init_weights(self) -> None:
        """Default init, then the fixed sin-cos position embedding."""
        super().init_weights()
        pretrained = (isinstance(self.init_cfg, dict)
                      and self.init_cfg.get('type') == 'Pretrained')
        if self.sincos_pos_embed and not pretrained:
            pos = build_2d_sincos_position_embedding(
                self.patch_resolution, self.embed_dims, cls_token=True)
            self.pos_embed.data.copy_(pos.float())
        if not pretrained:
            nn.init.normal_(self.cls_token, std=.02)

    def forward(self, x: Tensor,
                ids: Optional[Tensor] = None) -> Union[Tensor, Tuple]:
        """Encode all patches (``ids=None``) or only the patches ``ids``.

        Args:
            x (Tensor): Images of shape (B, C, H, W); H and W multiples of
                the patch size.
            ids (Tensor, optional): Raster indices of the patches to keep,
                shape (B, K), the same K for every image.

        Returns:
            Tensor of shape (B, 1 + K, C) (class token first, after the
            final norm) with ``ids``; without, ``VisionTransformer``'s tuple.
        """
        check_divisible(x.shape[-2:], self.patch_size, 'SplitMaskViT')
        if ids is None:
            return super().forward(x)
        b = x.shape[0]
        x, hw = self.patch_embed(x)  # (B, L, C)
        if ids.dim() != 2 or ids.shape[0] != b:
            raise ValueError(f'SplitMaskViT: ids must have shape (B={b}, K), '
                             f'got {tuple(ids.shape)}.')
        if ids.numel() and (int(ids.max()) >= x.shape[1]
                            or int(ids.min()) < 0):
            raise ValueError(
                f'SplitMaskViT: patch ids must lie in [0, {x.shape[1]}) for a '
                f'{hw[0]}x{hw[1]} patch grid, got [{int(ids.min())}, '
                f'{int(ids.max())}].')
        pos = resize_pos_embed(self.pos_embed, self.patch_resolution, hw,
                               mode=self.interpolate_mode,
                               num_extra_tokens=self.num_extra_tokens)
        x = x + pos[:, 1:]
        # keep only the given patches: (B, K, C)
        x = torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        cls = (self.cls_token + pos[:, :1]).expand(b, -1, -1)
        x = torch.cat((cls, x), dim=1)  # (B, 1 + K, C)
        x = self.pre_norm(self.drop_after_pos(x))
        for layer in self.layers:
            x = layer(x)
        if self.final_norm:
            x = self.ln1(x)
        return x


def _check_moved_mask_args(moved: dict) -> None:
    """The masking arguments moved to the data preprocessor: name them."""
    names = {'mask_mode': 'mode', 'mask_ratio': 'ratio',
             'min_block_patches': 'min_block_patches'}
    if not moved:
        return
    unknown = sorted(set(moved) - set(names))
    if unknown:
        raise TypeError(
            f'SplitMask got unexpected arguments {unknown}; it takes '
            'backbone, neck, head, target_generator, split, '
            'tokenizer_checkpoint, pretrained, data_preprocessor and '
            'init_cfg.')
    new = ', '.join(f'{names[k]}={v!r}' for k, v in moved.items())
    raise TypeError(
        f'SplitMask: {sorted(moved)} moved to the data preprocessor, which '
        "draws the masks: data_preprocessor=dict(type='SplitMaskPreprocessor'"
        f', mean=..., std=..., mask=dict({new})).')


@MODELS.register_module()
class SplitMask(EmbedPredictMixin, BaseSelfSupervisor):
    """SplitMask: split the patches, inpaint each half from the other.

    `Are Large-scale Datasets Necessary for Self-Supervised Pre-training?
    <https://arxiv.org/abs/2112.10740>`_ (El-Nouby et al., 2021).

    Each image's patches are split into disjoint A and B covering it by
    the data preprocessor (:class:`SplitMaskPreprocessor`, which draws the
    whole batch's splits and puts them in the data samples); the shared ``backbone``
    (:class:`SplitMaskViT`) encodes A and B separately, the ``neck``
    (:class:`SplitMaskDecoder`) inpaints each branch to all positions, and
    the ``head``'s :class:`SplitMaskLoss` computes the tokens' cross-entropy
    of each branch on the other set plus InfoNCE between the pooled branch
    descriptors (negatives: the other images, gathered across ranks). The
    ``target_generator`` is the training-free :class:`SplitMaskTokenizer`,
    whose codebook is part of the checkpoint. The maths is
    :func:`mm_instdisc.modules.splitmask_step`.

    ``split=False`` is the BEiT-style ablation with the same networks: one
    branch sees B and inpaints A (the block mask), MIM only.

    ``predict`` mode returns the mean of the encoder's patch tokens on the
    full image (for ``tools/knn_eval.py``).

    Args:
        backbone (dict): :class:`SplitMaskViT` config.
        neck (dict): :class:`SplitMaskDecoder` config.
        head (dict): ``LossHead`` config whose loss is a
            :class:`SplitMaskLoss`.
        target_generator (dict): :class:`SplitMaskTokenizer` config.
        split (bool): SplitMask (True) or the BEiT-style single branch.
            Defaults to True.
        tokenizer_checkpoint (str, optional): File written by
            ``tools/build_splitmask_tokenizer.py`` to load the codebook from.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict or nn.Module, optional): A
            :class:`SplitMaskPreprocessor` (its ``mask`` argument holds the
            masking: mode, ratio, smallest block); its patch grid is set
            from the backbone. Defaults to one with block masks.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_generator: dict, split: bool = True,
                 tokenizer_checkpoint: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **moved) -> None:
        _check_moved_mask_args(moved)
        if data_preprocessor is None:
            data_preprocessor = dict(type='SplitMaskPreprocessor')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        grid = tuple(self.backbone.patch_resolution)
        if not isinstance(self.data_preprocessor, SplitMaskPreprocessor):
            raise TypeError(
                'SplitMask draws its masks in the data preprocessor: use '
                "data_preprocessor=dict(type='SplitMaskPreprocessor', mean=..."
                ', std=..., mask=dict(mode=..., ratio=..., min_block_patches='
                f'...)), got {type(self.data_preprocessor).__name__}.')
        self.data_preprocessor.set_grid(grid)
        self.split = bool(split)
        tok = self.target_generator
        if tuple(self.neck.patch_resolution) != grid:
            raise ValueError(
                'SplitMask: neck.patch_resolution '
                f'{self.neck.patch_resolution} differs from the backbone\'s '
                f'patch grid {grid}.')
        if self.neck.embed_dims != self.backbone.embed_dims:
            raise ValueError(
                f'SplitMask: neck.embed_dims {self.neck.embed_dims} differs '
                f'from the backbone width {self.backbone.embed_dims}.')
        if tok.patch_size != self.backbone.patch_size[0]:
            raise ValueError(
                f'SplitMask: tokenizer patch_size {tok.patch_size} differs '
                f'from the backbone patch_size {self.backbone.patch_size[0]}.')
        if self.head.loss_module.vocab_size != tok.vocab_size:
            raise ValueError(
                'SplitMask: head.loss.vocab_size '
                f'{self.head.loss_module.vocab_size} differs from the '
                f'tokenizer vocab_size {tok.vocab_size}.')
        if tokenizer_checkpoint is not None:
            self.load_tokenizer(tokenizer_checkpoint)

    def load_tokenizer(self, path: str) -> None:
        """Load a codebook saved by ``tools/build_splitmask_tokenizer.py``."""
        state = read_checkpoint(path)
        state = state.get('state_dict', state)
        tok = self.target_generator
        if state['codebook'].shape != tok.codebook.shape:
            raise ValueError(
                f'SplitMask: tokenizer checkpoint {path} has a codebook of '
                f'shape {tuple(state["codebook"].shape)}, expected '
                f'{tuple(tok.codebook.shape)} (vocab_size x patch dim).')
        tok.load_state_dict(state)

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone outputs on full images (``VisionTransformer``)."""
        return self.backbone(inputs)

    def embed(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        """Mean of the encoder's patch tokens. Tensor of shape (B, C)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        out = self.backbone(inputs)[-1]
        if out.dim() == 3:  # 'raw': (B, 1 + L, C)
            return out[:, 1:].mean(dim=1)
        if out.dim() == 4:  # 'featmap': (B, C, H, W)
            return out.mean(dim=(2, 3))
        return out

    @property
    def mask_generator(self) -> SplitMaskGenerator:
        """The data preprocessor's :class:`SplitMaskGenerator`."""
        return self.data_preprocessor.mask_generator

    def _split_ids(self, inputs: Tensor,
                   data_samples: Optional[List[DataSample]]
                   ) -> Tuple[Tensor, Tensor]:
        """(ids_a, ids_b) (B, L_A), (B, L_B) of the batch: those the data
        preprocessor put in the data samples, or drawn now when the batch
        did not come through it (a direct ``model(x, mode='loss')``)."""
        if data_samples and all(s is not None and MASK_FIELDS[0] in s
                                for s in data_samples):
            return tuple(torch.stack([s.get(f) for s in data_samples])
                         for f in MASK_FIELDS)
        return self.data_preprocessor.draw(inputs.shape[0],
                                           device=inputs.device)

    def loss(self, inputs: Union[Tensor, List[Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, Tensor]:
        """SplitMask losses of a batch.

        Args:
            inputs (Tensor or list[Tensor]): Images (B, C, H, W) (the first
                view if a list).
            data_samples (list[DataSample]): With the split of each image
                (``split_ids_a`` / ``split_ids_b``, set by the data
                preprocessor); without, the split is drawn here.

        Returns:
            dict[str, Tensor]: ``loss`` (optimised) and, logged only,
            ``mim`` (token cross-entropy), ``nce`` (InfoNCE) and
            ``mim_acc`` (token accuracy).
        """
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        return splitmask_step(inputs, self.backbone, self.neck,
                              self.head.loss, self.target_generator,
                              self.mask_generator, split=self.split,
                              ids=self._split_ids(inputs, data_samples),
                              gather=partial(gather_rows, with_grad=True))
