"""SplitMask's losses (MIM cross-entropy both ways, InfoNCE between the
pooled descriptors of the two branches) and one training step."""
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import (PeriodicCheck, check_batch, check_finite,
                       check_temperature, float32_math)
from ..distributed import GatherFn
from ..info_nce import info_nce
from .masking import SplitMaskGenerator


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """Rows ``ids`` (B, K) of x (B, L, ...). Tensor of shape (B, K, ...)."""
    index = ids.reshape(*ids.shape, *([1] * (x.dim() - 2)))
    return torch.gather(x, 1, index.expand(-1, -1, *x.shape[2:]))


def _float32_linear(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)`` in float32 (float64 stays float64), also under autocast.

    The parameters of an ``nn.Linear`` are cast too (a no-op for the float32
    master weights of autocast), so a module converted to fp16 / bf16 as a
    whole also works; gradients reach them through the casts.
    """
    if isinstance(layer, nn.Linear):
        with float32_math(x, layer.weight, layer.bias) as (x, weight, bias):
            return F.linear(x, weight, bias)
    with float32_math(x) as (x, ):
        return layer(x)


def mim_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of token logits (B, K, V) against ids (B, K).

    The log-sum-exp is computed in float32, also under autocast.
    """
    with float32_math(logits) as (logits, ):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               targets.reshape(-1))


class SplitMaskLoss(nn.Module):
    """SplitMask objective: two-way token inpainting + InfoNCE of branches.

    With decoder outputs ``dec_a`` (the branch that saw A) and ``dec_b`` (the
    branch that saw B), both of shape (B, L, C) over all L positions:

    - MIM: ``predictor`` (a Linear C -> V) on ``dec_a`` at B's positions
      against B's tokens, and on ``dec_b`` at A's positions against A's
      tokens; ``mim`` = mean of the two directions' mean cross-entropies.
    - contrast: ``x_a = mean_L dec_a``, ``x_b = mean_L dec_b`` (all
      positions), ``projector`` (Identity, or a Linear C -> proj_dim), L2
      normalised; ``nce = (InfoNCE(z_a, Z_b) + InfoNCE(z_b, Z_a)) / 2`` at
      ``temperature``, with Z the (gathered) batch: the other images'
      descriptors of the other branch are the negatives.
    - ``loss = mim_weight * mim + contrastive_weight * nce``.

    Either branch may be None (BEiT-style single masked branch): then only
    that branch's MIM term is computed and ``nce`` is 0.

    The token logits (``predictor``), the descriptors (``projector`` and
    normalisation), the InfoNCE logits and both cross-entropies are computed
    in float32 even under fp16 / bf16 autocast (the decoder itself may run
    in half precision); gradients reach it through the casts.

    Args:
        embed_dims (int): C, the decoder width.
        vocab_size (int): V. Defaults to 8192.
        proj_dim (int, optional): Size of a Linear projection of the pooled
            descriptors before InfoNCE; None for none. Defaults to None.
        temperature (float): InfoNCE temperature. Defaults to 0.2.
        mim_weight (float): Weight of the MIM term. Defaults to 1.0.
        contrastive_weight (float): Weight of InfoNCE. Defaults to 1.0.
        check_interval (int): Calls between the checks that read values back
            from the device (NaN / Inf in ``dec_a`` and ``dec_b``); the first
            call is always checked, 0 never. Defaults to 100.

    Examples:
        >>> loss_fn = SplitMaskLoss(embed_dims=8, vocab_size=16)
        >>> ids = torch.arange(6).reshape(1, 6).repeat(2, 1)
        >>> out = loss_fn(torch.randn(2, 6, 8), torch.randn(2, 6, 8),
        ...               ids[:, :3], ids[:, 3:], torch.randint(16, (2, 6)))
        >>> sorted(out)
        ['loss', 'mim', 'mim_acc', 'nce']

    Raises:
        ValueError: On a NaN, infinite or non-positive temperature, negative
            loss weights, no branch, an empty batch or non-finite decoder
            outputs.
    """

    def __init__(self, embed_dims: int, vocab_size: int = 8192,
                 proj_dim: Optional[int] = None, temperature: float = 0.2,
                 mim_weight: float = 1.0,
                 contrastive_weight: float = 1.0,
                 check_interval: int = 100) -> None:
        super().__init__()
        temperature = check_temperature('temperature', temperature)
        if mim_weight < 0 or contrastive_weight < 0:
            raise ValueError(
                f'Illegal loss weights: mim_weight={mim_weight}, '
                f'contrastive_weight={contrastive_weight}; expected >= 0.')
        self.vocab_size = int(vocab_size)
        self.temperature = float(temperature)
        self.mim_weight = float(mim_weight)
        self.contrastive_weight = float(contrastive_weight)
        self.predictor = nn.Linear(embed_dims, vocab_size)
        self.projector: nn.Module = (nn.Linear(embed_dims, proj_dim)
                                     if proj_dim else nn.Identity())
        self._check = PeriodicCheck(check_interval)

    def descriptor(self, dec: Tensor) -> Tensor:
        """Average-pooled, projected, normalised descriptor (B, D).

        Float32 (float64 stays float64), also under autocast.
        """
        z = _float32_linear(self.projector, dec.mean(dim=1))
        with float32_math(z) as (z, ):
            return F.normalize(z, dim=1)

    def forward(self, dec_a: Optional[Tensor], dec_b: Optional[Tensor],
                ids_a: Tensor, ids_b: Tensor, tokens: Tensor,
                gather: Optional[GatherFn] = None) -> Dict[str, Tensor]:
        """Losses of one batch.

        Args:
            dec_a (Tensor, optional): Decoder output of the branch that saw
                A, shape (B, L, C); it predicts B's tokens.
            dec_b (Tensor, optional): Same for the branch that saw B.
            ids_a (Tensor): Patch indices of A, shape (B, L_A).
            ids_b (Tensor): Patch indices of B, shape (B, L_B).
            tokens (Tensor): Token ids of all patches, shape (B, L).
            gather (callable, optional): ``z (B, D) -> (Z (M, D), offset)``
                gathering descriptors across ranks (row ``offset + i`` of Z
                is this rank's ``z[i]``); None for the local batch only.

        Returns:
            dict[str, Tensor]: ``loss`` (weighted total, differentiable),
            and detached ``mim``, ``nce``, ``mim_acc`` (top-1 token accuracy).
        """
        if dec_a is None and dec_b is None:
            raise ValueError('SplitMaskLoss needs at least one branch.')
        branches = [(name, dec) for name, dec in (('dec_a', dec_a),
                                                  ('dec_b', dec_b))
                    if dec is not None]
        for name, dec in branches:
            check_batch(f'SplitMask decoder output {name}', dec, dim=3)
        if self._check.due():
            for name, dec in branches:
                check_finite(f'SplitMask decoder output {name}', dec)
        mims: List[Tensor] = []
        correct, total = 0.0, 0
        for dec, ids in ((dec_a, ids_b), (dec_b, ids_a)):
            if dec is None:
                continue
            # token logits in float32: (B, K, V)
            logits = _float32_linear(self.predictor, gather_tokens(dec, ids))
            target = torch.gather(tokens, 1, ids)  # (B, K)
            mims.append(mim_cross_entropy(logits, target))
            correct += (logits.argmax(-1) == target).sum().item()
            total += target.numel()
        mim = torch.stack(mims).mean()
        if dec_a is not None and dec_b is not None:
            z_a, z_b = self.descriptor(dec_a), self.descriptor(dec_b)
            if gather is None:
                za_all, zb_all, offset = z_a, z_b, 0
            else:
                za_all, offset = gather(z_a)  # (M, D)
                zb_all, _ = gather(z_b)  # (M, D)
            nce = 0.5 * (info_nce(z_a, zb_all, self.temperature, offset) +
                         info_nce(z_b, za_all, self.temperature, offset))
        else:
            nce = mim.new_zeros(())
        loss = self.mim_weight * mim + self.contrastive_weight * nce
        return dict(loss=loss, mim=mim.detach(), nce=nce.detach(),
                    mim_acc=mim.new_tensor(correct / max(total, 1)))


def splitmask_step(images: Tensor, encoder: Callable, decoder: Callable,
                   loss_fn: Callable, tokenizer: Callable,
                   mask_generator: SplitMaskGenerator, split: bool = True,
                   gather: Optional[GatherFn] = None,
                   generator: Optional[torch.Generator] = None,
                   ids: Optional[Tuple[Tensor, Tensor]] = None
                   ) -> Dict[str, Tensor]:
    """One SplitMask forward: tokens, split, encode, decode, losses.

    The same function drives the registered ``SplitMask`` algorithm and
    hand-written loops (``examples/splitmask_plain.py``).

    Args:
        images (Tensor): Shape (B, C, H, W).
        encoder (callable): ``encoder(images, ids (B, K)) -> (B, 1 + K, C)``
            (class token first), seeing only the patches ``ids``.
        decoder (callable): ``decoder(x (B, 1 + K, C), ids) -> (B, L, C)``.
        loss_fn (callable): A :class:`SplitMaskLoss` (or same signature).
        tokenizer (callable): ``images -> token ids (B, L)``.
        mask_generator (SplitMaskGenerator): Gives (ids_a, ids_b) (and
            checks the grid when ``ids`` are given).
        split (bool): True for SplitMask (both branches, MIM both ways +
            InfoNCE). False for the BEiT-style ablation: one branch sees B
            and inpaints A (MIM only). Defaults to True.
        gather (callable, optional): See :meth:`SplitMaskLoss.forward`.
        generator (torch.Generator, optional): Randomness of the masks.
        ids (tuple[Tensor, Tensor], optional): The split, drawn before
            (e.g. by ``SplitMaskPreprocessor``): sorted patch indices of A
            (B, L_A) and B (B, L_B). None draws it here.

    Returns:
        dict[str, Tensor]: What ``loss_fn`` returns.
    """
    with torch.no_grad():
        tokens = tokenizer(images)  # (B, L)
    if tokens.shape[1] != mask_generator.num_patches:
        raise ValueError(
            f'The tokenizer gives {tokens.shape[1]} patches per image but the '
            f'mask generator splits {mask_generator.num_patches} '
            f'({mask_generator.height}x{mask_generator.width}); image size '
            f'{tuple(images.shape[-2:])} does not match the configured grid.')
    if ids is None:
        ids = mask_generator(images.shape[0], generator=generator,
                             device=images.device)
    ids_a, ids_b = ids
    if ids_a.shape[1] + ids_b.shape[1] != tokens.shape[1]:
        raise ValueError(
            f'The split has {ids_a.shape[1]} + {ids_b.shape[1]} patches per '
            f'image, the tokenizer {tokens.shape[1]}.')
    dec_b = decoder(encoder(images, ids_b), ids_b)  # sees B, predicts A
    dec_a = decoder(encoder(images, ids_a), ids_a) if split else None
    return loss_fn(dec_a, dec_b, ids_a, ids_b, tokens, gather=gather)
