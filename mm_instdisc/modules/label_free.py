"""Label-free signals of a representation (plain PyTorch).

Numbers that say whether self-supervised training is going somewhere,
computed from embeddings alone (and one that needs a small labelled set):

* :func:`alignment` and :func:`uniformity` of `Wang & Isola, Understanding
  Contrastive Representation Learning through Alignment and Uniformity on the
  Hypersphere <https://arxiv.org/abs/2005.10242>`_: how close the two views of
  an image land (lower is better) and how evenly the images spread over the
  unit sphere (lower, i.e. more negative, is more uniform).
* :func:`rankme` of `Garrido et al., RankMe: Assessing the Downstream
  Performance of Pretrained Self-Supervised Representations by Their Rank
  <https://arxiv.org/abs/2210.02885>`_: the effective rank of the embedding
  matrix, 1 for collapsed embeddings, up to ``min(N, D)``.
* :func:`loo_knn_accuracy`: leave-one-out weighted kNN top-1 accuracy within
  one labelled set, NPID's kNN vote (:mod:`mm_instdisc.modules.knn`) with
  each sample's own row left out.

:func:`alignment` and :func:`uniformity` L2-normalise their inputs
themselves (a no-op for unit rows), so they always measure on the sphere;
:func:`rankme` takes the matrix as it is given.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_batch, check_finite, check_temperature
from .knn import knn_topk, knn_vote, topk_accuracy


def _check_positive(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'Illegal {name}: {value!r}; expected a number > 0.')
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f'Illegal {name}: {value}; expected a finite number '
                         '> 0.')
    return value


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2.0) -> Tensor:
    """Alignment of positive pairs: mean of ``||f(x) - f(y)||_2 ** alpha``.

    Wang & Isola's ``L_align``, over the pairs ``(z1[i], z2[i])`` (two views
    of image i). Rows are L2-normalised here, so the value lies in
    ``[0, 2 ** alpha]``: 0 when the views agree exactly, 2 (for
    ``alpha=2``) for unrelated random directions in high dimension.

    Args:
        z1 (Tensor): Embeddings of the first views, Tensor of shape (B, D).
        z2 (Tensor): Embeddings of the second views, Tensor of shape (B, D).
        alpha (float): Exponent of the distance. Defaults to 2.

    Returns:
        Tensor: A scalar, float32 (float64 for float64 inputs).

    Examples:
        >>> z = torch.tensor([[1., 0.], [0., 2.]])
        >>> float(alignment(z, z))
        0.0
        >>> round(float(alignment(z, torch.tensor([[0., 1.], [0., 1.]]))), 4)
        1.0

    Raises:
        ValueError: On shapes that are not two equal (B, D) with B >= 1, on
            non-finite values, or on ``alpha <= 0``.
    """
    check_batch('z1', z1)
    check_batch('z2', z2)
    if z1.shape != z2.shape:
        raise ValueError(f'alignment needs two views of the same shape, got '
                         f'{tuple(z1.shape)} and {tuple(z2.shape)}.')
    alpha = _check_positive('alpha', alpha)
    check_finite('z1', z1)
    check_finite('z2', z2)
    z1, z2 = _unit(z1), _unit(z2)
    return (z1 - z2).norm(dim=1).pow(alpha).mean()


def uniformity(z: Tensor, t: float = 2.0) -> Tensor:
    """Uniformity: ``log`` of the mean over pairs ``i != j`` of
    ``exp(-t ||z_i - z_j||^2)``.

    Wang & Isola's ``L_uniform`` (a Gaussian potential). Rows are
    L2-normalised here. 0 for collapsed embeddings (all rows equal), and
    about ``-t * 2`` = -4 for many random directions in high dimension;
    lower means more uniform. Computed over the ``B (B - 1)`` ordered pairs
    as a max-shifted log-mean-exp, in float32 or better.

    Args:
        z (Tensor): Embeddings, Tensor of shape (B, D), B >= 2.
        t (float): Scale of the potential. Defaults to 2.

    Returns:
        Tensor: A scalar.

    Examples:
        >>> abs(float(uniformity(torch.ones(4, 3)))) < 1e-6  # collapsed
        True
        >>> z = torch.tensor([[1., 0.], [-1., 0.]])
        >>> round(float(uniformity(z)), 4)  # ||z_0 - z_1||^2 = 4: -2 * 4
        -8.0

    Raises:
        ValueError: On a shape other than (B, D) with B >= 2, non-finite
            values, or ``t <= 0``.
    """
    check_batch('z', z)
    if z.shape[0] < 2:
        raise ValueError(f'uniformity needs at least 2 embeddings (pairs '
                         f'i != j), got shape {tuple(z.shape)}.')
    t = _check_positive('t', t)
    check_finite('z', z)
    z = _unit(z)
    B = z.shape[0]
    # squared distances of unit rows: 2 - 2 cos, (B, B) (one matmul: no
    # (B, B, D) difference tensor, and no sqrt to break gradients at 0)
    sq = (2 - 2 * z @ z.t()).clamp_min(0)
    off = ~torch.eye(B, dtype=torch.bool, device=z.device)
    x = -t * sq[off]  # (B (B - 1), )
    # log mean exp, shifted by the max (exactly 0 for collapsed rows)
    m = x.max()
    return m + (x - m).exp().mean().log()


def rankme(z: Tensor, eps: float = 1e-7) -> Tensor:
    """RankMe: ``exp`` of the entropy of the normalised singular values.

    With ``s`` the singular values of the (N, D) embedding matrix,
    ``p_k = s_k / ||s||_1 + eps`` and ``RankMe = exp(-sum_k p_k log p_k)``
    (Garrido et al., eq. 1). About 1 for collapsed embeddings (one direction),
    ``min(N, D)`` for a matrix with equal singular values (e.g. orthonormal
    rows); an all-zero matrix gives about 1. The embeddings are used as
    given (the hook passes L2-normalised ones); the SVD is computed in
    float32 or better. Meaningful when ``N >> D``: RankMe cannot exceed N.

    Args:
        z (Tensor): Embeddings, Tensor of shape (N, D).
        eps (float): Added to each ``p_k`` (keeps ``log`` finite).
            Defaults to 1e-7.

    Returns:
        Tensor: A scalar in ``[1, min(N, D)]`` (up to ``eps`` terms).

    Examples:
        >>> round(float(rankme(torch.eye(4))), 3)
        4.0
        >>> round(float(rankme(torch.ones(8, 4))), 3)
        1.0

    Raises:
        ValueError: On a shape other than (N, D) with N >= 1, non-finite
            values, or ``eps < 0``.
    """
    check_batch('z', z)
    eps = float(eps)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f'Illegal eps: {eps}; expected a finite number '
                         '>= 0.')
    check_finite('z', z)
    x = z if z.dtype == torch.float64 else z.float()
    s = torch.linalg.svdvals(x)  # (min(N, D), )
    p = s / s.sum().clamp_min(torch.finfo(s.dtype).tiny) + eps
    return torch.exp(-(p * p.log()).sum())


@torch.no_grad()
def loo_knn_accuracy(feats: Tensor, labels: Tensor, k: int = 20,
                     temperature: float = 0.07) -> float:
    """Leave-one-out weighted kNN top-1 accuracy (%) within one labelled set.

    Each sample is classified by the votes of its ``k`` nearest *other*
    samples (cosine similarity, weight ``exp(s / temperature)``), NPID's
    kNN classifier (:func:`~mm_instdisc.modules.knn.knn_topk` and
    :func:`~mm_instdisc.modules.knn.knn_vote`) with the sample's own row
    removed from its neighbours. ``k`` is clipped to ``N - 1``.

    Args:
        feats (Tensor): Embeddings, Tensor of shape (N, D), N >= 2;
            normalised here.
        labels (Tensor): Integer class labels, Tensor of shape (N, ), >= 0.
        k (int): Neighbours that vote. Defaults to 20.
        temperature (float): tau of the vote weights. Defaults to 0.07.

    Returns:
        float: Top-1 accuracy in percent.

    Examples:
        >>> feats = torch.tensor([[1., 0.], [1., .1], [0., 1.], [.1, 1.]])
        >>> loo_knn_accuracy(feats, torch.tensor([0, 0, 1, 1]), k=1)
        100.0
        >>> loo_knn_accuracy(feats, torch.tensor([0, 1, 0, 1]), k=1)
        0.0

    Raises:
        ValueError: On mismatched shapes, fewer than 2 samples, negative
            labels, ``k < 1`` or a non-positive temperature.
    """
    check_batch('feats', feats)
    N = feats.shape[0]
    if N < 2:
        raise ValueError(f'Leave-one-out kNN needs at least 2 samples, got '
                         f'feats of shape {tuple(feats.shape)}.')
    if labels.dim() != 1 or labels.shape[0] != N:
        raise ValueError(f'Expected labels of shape ({N}, ), got '
                         f'{tuple(labels.shape)}.')
    if labels.is_floating_point() or bool((labels < 0).any()):
        raise ValueError('Labels must be non-negative integers (class '
                         f'indices), got dtype {labels.dtype}, min '
                         f'{labels.min().item()}.')
    if int(k) != k or k < 1:
        raise ValueError(f'Illegal k: {k}; expected an integer >= 1.')
    temperature = check_temperature('temperature', temperature)
    check_finite('feats', feats)
    k = min(int(k), N - 1)
    labels = labels.long().to(feats.device)
    # k + 1 neighbours: the sample itself is one of them unless ties push
    # it out; drop it (or, if absent, the farthest), keeping the order
    sims, inds = knn_topk(feats, feats, k + 1)  # (N, k + 1)
    is_self = inds == torch.arange(N, device=inds.device)[:, None]
    is_self[:, -1] |= ~is_self.any(1)
    keep = (~is_self).nonzero()[:, 1].view(N, k)  # (N, k), ascending
    sims, inds = sims.gather(1, keep), inds.gather(1, keep)
    num_classes = int(labels.max()) + 1
    scores = knn_vote(sims, labels[inds], num_classes, temperature)  # (N, C)
    return topk_accuracy(scores, labels, (1, ))[1]


def _unit(z: Tensor) -> Tensor:
    """Rows L2-normalised, in float32 (float64 stays float64)."""
    return F.normalize(z if z.dtype == torch.float64 else z.float(), dim=1)
