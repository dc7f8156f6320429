"""The read-out of a frozen representation (plain PyTorch).

A self-supervised network is judged on its frozen features by weighted kNN
(:func:`~mm_instdisc.modules.knn.knn_evaluate`: cosine similarity, top-k
votes ``exp(s / tau)``, k = 20 and 200) and a linear probe
(:func:`linear_probe`); :func:`readout` gives both in one call, the one
read-out of the benchmarks, the demo and the examples
(``mm_instdisc.evaluation`` extracts the features; its :class:`KNNMetric`
wraps the same kNN for validation during training). Torch only, on the
features' device, deterministic for a given seed (and thread count).
"""
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .knn import knn_evaluate


def _check(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
           test_labels: Tensor) -> None:
    if train_feats.dim() != 2 or test_feats.dim() != 2:
        raise ValueError('Expected features of shape (N, D), got train '
                         f'{tuple(train_feats.shape)} and test '
                         f'{tuple(test_feats.shape)}.')
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f'Train feature dim {train_feats.shape[1]} != test '
                         f'feature dim {test_feats.shape[1]}.')
    for name, f, y in (('train', train_feats, train_labels),
                       ('test', test_feats, test_labels)):
        if y.dim() != 1 or y.shape[0] != f.shape[0]:
            raise ValueError(f'{f.shape[0]} {name} features but {name} '
                             f'labels of shape {tuple(y.shape)}.')
        if y.dtype.is_floating_point:
            raise ValueError(f'{name} labels must be integer class indices, '
                             f'got dtype {y.dtype}.')
        if y.numel() and int(y.min()) < 0:
            raise ValueError(f'{name} labels must be >= 0, got '
                             f'{int(y.min())} (unlabelled images?).')
        if not torch.isfinite(f).all():
            raise ValueError(f'{name} features contain NaN/Inf.')
    if train_feats.shape[0] == 0:
        raise ValueError('No training features.')


def linear_probe(train_feats: Tensor, train_labels: Tensor,
                 test_feats: Tensor, test_labels: Tensor,
                 num_classes: Optional[int] = None, optimizer: str = 'lbfgs',
                 epochs: int = 10, lr: Optional[float] = None,
                 weight_decay: float = 1e-4, batch_size: int = 256,
                 standardize: bool = True, seed: int = 0) -> Dict[str, float]:
    """Train a linear classifier on frozen features; top-1 on test features.

    Features are standardised with the training set's per-dimension mean and
    standard deviation (``standardize=True``), so one learning rate suits
    L2-normalised embeddings and raw pixels alike. The classifier starts at
    zero (the problem is convex; the seed only orders SGD's minibatches).

    * ``'lbfgs'``: full-batch L-BFGS with strong-Wolfe line search,
      ``epochs`` rounds of up to 20 iterations (lr defaults to 1).
    * ``'sgd'``: minibatch SGD, momentum 0.9, cosine lr over ``epochs``
      epochs of ``batch_size`` (lr defaults to 0.1).

    The loss is cross-entropy plus ``weight_decay * ||W||^2 / 2`` (bias not
    decayed).

    Args:
        train_feats (Tensor): Training features, shape (N, D).
        train_labels (Tensor): Their class indices, shape (N, ).
        test_feats (Tensor): Test features, shape (M, D).
        test_labels (Tensor): Their class indices, shape (M, ).
        num_classes (int, optional): C; max label + 1 if None.
        optimizer (str): ``'lbfgs'`` or ``'sgd'``. Defaults to ``'lbfgs'``.
        epochs (int): L-BFGS rounds or SGD epochs. Defaults to 10.
        lr (float, optional): Learning rate; see above for the defaults.
        weight_decay (float): L2 weight on W. Defaults to 1e-4.
        batch_size (int): SGD minibatch size. Defaults to 256.
        standardize (bool): Standardise features. Defaults to True.
        seed (int): Seed of SGD's shuffling. Defaults to 0.

    Returns:
        dict[str, float]: ``top1`` (test accuracy, %), ``train_top1`` (%)
        and ``train_loss`` (final regularised training loss).

    Raises:
        ValueError: On inconsistent shapes, non-integer or negative labels,
            non-finite features or a bad optimizer / epochs / lr.
    """
    _check(train_feats, train_labels, test_feats, test_labels)
    if optimizer not in ('lbfgs', 'sgd'):
        raise ValueError(f"Illegal optimizer: {optimizer!r}; expected "
                         "'lbfgs' or 'sgd'.")
    if epochs < 1:
        raise ValueError(f'Illegal epochs: {epochs}; must be >= 1.')
    if lr is not None and lr <= 0:
        raise ValueError(f'Illegal lr: {lr}; must be > 0.')
    if weight_decay < 0:
        raise ValueError(f'Illegal weight_decay: {weight_decay}; must be '
                         '>= 0.')
    device = train_feats.device
    x_tr = train_feats.detach().float()
    x_te = test_feats.detach().float().to(device)
    y_tr = train_labels.long().to(device)
    y_te = test_labels.long().to(device)
    if num_classes is None:
        num_classes = int(max(int(y_tr.max()), int(y_te.max()))) + 1
    if standardize:
        mean = x_tr.mean(0, keepdim=True)
        std = x_tr.std(0, keepdim=True).clamp_min(1e-6) if x_tr.shape[0] > 1 \
            else torch.ones_like(mean)
        x_tr = (x_tr - mean) / std
        x_te = (x_te - mean) / std
    clf = nn.Linear(x_tr.shape[1], num_classes).to(device)
    nn.init.zeros_(clf.weight)
    nn.init.zeros_(clf.bias)

    def objective(x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(clf(x), y) + \
            0.5 * weight_decay * clf.weight.pow(2).sum()

    with torch.enable_grad():
        if optimizer == 'lbfgs':
            opt = torch.optim.LBFGS(clf.parameters(),
                                    lr=1.0 if lr is None else lr,
                                    max_iter=20, history_size=20,
                                    line_search_fn='strong_wolfe')

            def closure() -> Tensor:
                opt.zero_grad()
                loss = objective(x_tr, y_tr)
                loss.backward()
                return loss

            for _ in range(epochs):
                opt.step(closure)
        else:
            base_lr = 0.1 if lr is None else lr
            opt = torch.optim.SGD(clf.parameters(), lr=base_lr, momentum=0.9)
            g = torch.Generator().manual_seed(seed)
            n = x_tr.shape[0]
            steps_per_epoch = (n + batch_size - 1) // batch_size
            total = epochs * steps_per_epoch
            step = 0
            for _ in range(epochs):
                perm = torch.randperm(n, generator=g).to(device)
                for s in range(0, n, batch_size):
                    idx = perm[s:s + batch_size]
                    for group in opt.param_groups:
                        group['lr'] = base_lr * 0.5 * (
                            1 + math.cos(math.pi * step / total))
                    opt.zero_grad()
                    objective(x_tr[idx], y_tr[idx]).backward()
                    opt.step()
                    step += 1
    with torch.no_grad():
        train_loss = objective(x_tr, y_tr).item()
        train_top1 = (clf(x_tr).argmax(1) == y_tr).float().mean().item()
        top1 = (clf(x_te).argmax(1) == y_te).float().mean().item() \
            if y_te.numel() else float('nan')
    return dict(top1=100.0 * top1, train_top1=100.0 * train_top1,
                train_loss=train_loss)


def readout(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
            test_labels: Tensor, ks: Sequence[int] = (20, 200),
            probe: bool = True, num_classes: Optional[int] = None,
            temperature: float = 0.07, probe_epochs: int = 10,
            seed: int = 0) -> Dict[str, float]:
    """Weighted-kNN top-1 for each k and (``probe``) linear-probe top-1.

    The test features are classified against the training features by
    :func:`~mm_instdisc.modules.knn.knn_evaluate` and by a linear classifier
    trained on the training features (:func:`linear_probe`, L-BFGS,
    standardised features).

    Args:
        train_feats (Tensor): Reference / training features, shape (N, D).
        train_labels (Tensor): Their class indices, shape (N, ).
        test_feats (Tensor): Query / test features, shape (M, D).
        test_labels (Tensor): Their class indices, shape (M, ).
        ks (Sequence[int]): kNN neighbourhood sizes. Defaults to (20, 200).
        probe (bool): Also train the linear probe. Defaults to True.
        num_classes (int, optional): C; the max label + 1 if None.
        temperature (float): tau of the kNN vote weights. Defaults to 0.07.
        probe_epochs (int): L-BFGS rounds of the probe. Defaults to 10.
        seed (int): Seed of the probe. Defaults to 0.

    Returns:
        dict[str, float]: ``knn_k{k}`` (kNN top-1, %) for each k and, with
        ``probe``, ``linear`` (probe test top-1, %) and ``linear_train``
        (its training top-1, %).

    Examples:
        >>> x = torch.eye(4).repeat(5, 1)
        >>> y = torch.arange(4).repeat(5)
        >>> readout(x, y, torch.eye(4), torch.arange(4), ks=(3, ))
        {'knn_k3': 100.0, 'linear': 100.0, 'linear_train': 100.0}

    Raises:
        ValueError: See :func:`~mm_instdisc.modules.knn.weighted_knn` and
            :func:`linear_probe`.
    """
    if num_classes is None:
        num_classes = int(torch.cat([train_labels.flatten().long().cpu(),
                                     test_labels.flatten().long().cpu()
                                     ]).max()) + 1
    knn = knn_evaluate(train_feats, train_labels, test_feats, test_labels,
                       ks=ks, temperature=temperature, topk=(1, ),
                       num_classes=num_classes)
    out = {f'knn_k{k}': acc[1] for k, acc in knn.items()}
    if probe:
        res = linear_probe(train_feats, train_labels, test_feats,
                           test_labels, num_classes=num_classes,
                           epochs=probe_epochs, seed=seed)
        out.update(linear=res['top1'], linear_train=res['train_top1'])
    return out
