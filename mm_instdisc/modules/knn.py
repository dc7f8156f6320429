"""Weighted k-nearest-neighbour classification of embeddings (plain PyTorch).

As in NPID's evaluation: cosine similarity to the reference (training)
features, the top k neighbours vote for their class with weight
``exp(s / tau)``. Computed in chunks of queries and of reference rows, so the
peak extra memory is ``query_chunk x (ref_chunk + k)`` whatever the bank size
(1.28M ImageNet rows included).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def knn_topk(query: Tensor, reference: Tensor, k: int,
             query_chunk: int = 1024, ref_chunk: int = 65536):
    """Top-k cosine neighbours of each query.

    Args:
        query (Tensor): Shape (Q, D); normalised here.
        reference (Tensor): Shape (N, D); normalised here.
        k (int): Neighbours to keep (clipped to N).
        query_chunk (int): Queries per block. Defaults to 1024.
        ref_chunk (int): Reference rows per block. Defaults to 65536.

    Returns:
        tuple[Tensor, Tensor]: Similarities (Q, k), sorted descending, and
        the neighbours' row indices (Q, k).
    """
    k = min(k, reference.shape[0])
    query = F.normalize(query.float(), dim=1)
    reference = F.normalize(reference.float(), dim=1)
    sims, inds = [], []
    for q0 in range(0, query.shape[0], query_chunk):
        q = query[q0:q0 + query_chunk]
        best_s = q.new_empty(q.shape[0], 0)
        best_i = torch.empty(q.shape[0], 0, dtype=torch.long, device=q.device)
        for r0 in range(0, reference.shape[0], ref_chunk):
            s = q @ reference[r0:r0 + ref_chunk].t()  # (q, r)
            s, i = s.topk(min(k, s.shape[1]), dim=1)
            best_s = torch.cat([best_s, s], 1)
            best_i = torch.cat([best_i, i + r0], 1)
            best_s, order = best_s.topk(min(k, best_s.shape[1]), dim=1)
            best_i = best_i.gather(1, order)
        sims.append(best_s)
        inds.append(best_i)
    return torch.cat(sims), torch.cat(inds)


@torch.no_grad()
def knn_vote(sims: Tensor, neighbour_labels: Tensor, num_classes: int,
             temperature: float = 0.07) -> Tensor:
    """Class scores from weighted votes: sum over neighbours of exp(s/tau).

    Args:
        sims (Tensor): Neighbour similarities (Q, k).
        neighbour_labels (Tensor): Their labels (Q, k).
        num_classes (int): C.
        temperature (float): tau. Defaults to 0.07.

    Returns:
        Tensor: Scores of shape (Q, C).
    """
    weights = (sims / temperature).exp()
    scores = sims.new_zeros(sims.shape[0], num_classes)
    return scores.scatter_add_(1, neighbour_labels, weights)


@torch.no_grad()
def weighted_knn(query: Tensor, reference: Tensor, reference_labels: Tensor,
                 num_classes: Optional[int] = None,
                 ks: Sequence[int] = (200, ), temperature: float = 0.07,
                 query_chunk: int = 1024,
                 ref_chunk: int = 65536) -> Dict[int, Tensor]:
    """Weighted kNN class scores for several k in one pass.

    Args:
        query (Tensor): Query embeddings (Q, D).
        reference (Tensor): Reference embeddings (N, D), e.g. a memory bank.
        reference_labels (Tensor): Integer labels (N, ).
        num_classes (int, optional): C; the max label + 1 if None.
        ks (Sequence[int]): Neighbourhood sizes. Defaults to (200, ).
        temperature (float): tau of the vote weights. Defaults to 0.07.
        query_chunk (int): Queries per block. Defaults to 1024.
        ref_chunk (int): Reference rows per block. Defaults to 65536.

    Returns:
        dict[int, Tensor]: For each k, class scores (Q, C).

    Examples:
        >>> ref = torch.eye(3).repeat(2, 1)
        >>> labels = torch.tensor([0, 1, 2, 0, 1, 2])
        >>> scores = weighted_knn(torch.eye(3), ref, labels, ks=(2, ))
        >>> scores[2].argmax(1).tolist()
        [0, 1, 2]

    Raises:
        ValueError: On mismatched shapes, a non-positive temperature or k.
    """
    if reference.shape[0] != reference_labels.shape[0]:
        raise ValueError(f'{reference.shape[0]} reference features but '
                         f'{reference_labels.shape[0]} labels.')
    if query.shape[1] != reference.shape[1]:
        raise ValueError(f'Query dim {query.shape[1]} != reference dim '
                         f'{reference.shape[1]}.')
    if temperature <= 0:
        raise ValueError(f'Illegal temperature: {temperature}; must be > 0.')
    if not ks or min(ks) < 1:
        raise ValueError(f'Illegal ks: {ks}; need positive neighbourhood sizes.')
    reference_labels = reference_labels.long().to(reference.device)
    if num_classes is None:
        num_classes = int(reference_labels.max()) + 1
    sims, inds = knn_topk(query.to(reference.device), reference, max(ks),
                          query_chunk, ref_chunk)
    labels = reference_labels[inds]
    return {k: knn_vote(sims[:, :k], labels[:, :k], num_classes, temperature)
            for k in ks}


def topk_accuracy(scores: Tensor, targets: Tensor,
                  topk: Sequence[int] = (1, 5)) -> Dict[int, float]:
    """Percentage of targets among the top-k scored classes, for each k."""
    targets = targets.to(scores.device).long()
    maxk = min(max(topk), scores.shape[1])
    pred = scores.topk(maxk, dim=1).indices
    hit = pred == targets[:, None]
    return {k: 100.0 * hit[:, :min(k, maxk)].any(1).float().mean().item()
            for k in topk}


def knn_evaluate(train_feats: Tensor, train_labels: Tensor,
                 test_feats: Tensor, test_labels: Tensor,
                 ks: Sequence[int] = (10, 20, 100, 200),
                 temperature: float = 0.07, topk: Sequence[int] = (1, 5),
                 num_classes: Optional[int] = None
                 ) -> Dict[int, Dict[int, float]]:
    """Top-k accuracies (%) of weighted kNN for each neighbourhood size.

    The test features are classified against the training features by
    :func:`weighted_knn` (NPID's protocol), the one kNN evaluation behind
    :func:`~mm_instdisc.modules.feature_readout.readout`, ``KNNMetric`` and
    ``mm-instdisc-knn-eval``.

    Args:
        train_feats (Tensor): Reference features, shape (N, D).
        train_labels (Tensor): Their integer labels, shape (N, ).
        test_feats (Tensor): Query features, shape (M, D).
        test_labels (Tensor): Their integer labels, shape (M, ).
        ks (Sequence[int]): Neighbourhood sizes. Defaults to
            (10, 20, 100, 200).
        temperature (float): tau of the vote weights. Defaults to 0.07.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        num_classes (int, optional): C; the max training label + 1 if None.

    Returns:
        dict[int, dict[int, float]]: ``{k: {t: top-t accuracy}}`` for k in
        ``ks`` and t in ``topk``.

    Examples:
        >>> ref = torch.eye(3).repeat(2, 1)
        >>> labels = torch.tensor([0, 1, 2, 0, 1, 2])
        >>> knn_evaluate(ref, labels, torch.eye(3), torch.tensor([0, 1, 1]),
        ...              ks=(2, ), topk=(1, ))
        {2: {1: 66.66666865348816}}

    Raises:
        ValueError: See :func:`weighted_knn`.
    """
    scores = weighted_knn(test_feats, train_feats.to(test_feats.device),
                          train_labels, num_classes=num_classes, ks=ks,
                          temperature=temperature)
    return {k: topk_accuracy(s, test_labels, tuple(topk))
            for k, s in scores.items()}
