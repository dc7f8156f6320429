"""InfoNCE, once for every contrastive loss of the package.

``info_nce_from_logits`` is the cross-entropy of tempered similarities
against the column of each row's positive; AdCo (keys + adversarial
negatives, at t and at mem_t), Exemplar (positive key + label-filtered
queue) and SplitMask (the other branch's descriptors of the global batch)
build their own logits and call it. NPID's objectives are not InfoNCE of
this form (NCE, and a softmax streamed over the whole bank) and keep their
own maths in ``npid_loss``.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_batch, float32_math


def info_nce_from_logits(logits: Tensor, target: Tensor,
                         temperature: float) -> Tensor:
    """Mean of ``-log softmax(logits / temperature)[i, target[i]]``.

    Args:
        logits (Tensor): Un-tempered similarities, shape (B, C) (a masked
            entry is ``-inf``).
        target (Tensor): Column of each row's positive, shape (B, ).
        temperature (float): t.

    The division and the log-sum-exp are computed in float32 (float64 stays
    float64), also under fp16 / bf16 autocast.
    """
    with float32_math(logits) as (logits, ):
        return F.cross_entropy(logits / temperature, target)


def info_nce(q: Tensor, k: Tensor, temperature: float,
             pos_offset: int = 0) -> Tensor:
    """InfoNCE of L2-normalised q (B, D) against k (M, D).

    The positive of ``q[i]`` is ``k[pos_offset + i]``; every other row of k
    (e.g. the other images of the global batch, gathered with
    ``pos_offset`` as in :mod:`mm_instdisc.modules.distributed`) is a
    negative. Logits are computed in float32 as in
    :func:`info_nce_from_logits`.

    Raises:
        ValueError: On an empty batch (q or k without rows).
    """
    check_batch('InfoNCE queries q', q)
    check_batch('InfoNCE keys k', k)
    with float32_math(q, k) as (q, k):
        # logits: (B, M)
        logits = q @ k.t()
        target = torch.arange(q.shape[0], device=q.device) + pos_offset
        return info_nce_from_logits(logits, target, temperature)
