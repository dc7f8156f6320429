"""The pretext tasks' label generation and classifier loss against slow,
obvious references written here."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules.pretext import (NEIGHBOURS, PretextClsLoss,
                                         grid_patches, hamming_permutations,
                                         jigsaw_tiles, neighbour_pairs,
                                         rotations)


def test_rotations_pixel_by_pixel():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    out, labels = rotations(x)
    assert out.shape == (8, 3, 4, 4)
    assert labels.tolist() == [0, 1, 2, 3] * 2
    n = 4
    for i in range(2):
        for r in range(4):
            img = out[4 * i + r]
            for c in range(3):
                for row in range(n):
                    for col in range(n):
                        # undo r counter-clockwise quarter turns, one by one:
                        # a CCW turn maps (row, col) -> (n - 1 - col, row)
                        rr, cc = row, col
                        for _ in range(r):
                            rr, cc = cc, n - 1 - rr
                        assert img[c, row, col] == x[i, c, rr, cc]


def test_rotations_need_square_images():
    with pytest.raises(ValueError, match='square images'):
        rotations(torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        rotations(torch.zeros(1, 4, 4))


def _find(img, patch, window):
    """Top-left corners inside ``window`` = (r0, r1, c0, c1) where ``patch``
    equals the crop of ``img`` (C, H, W)."""
    p = patch.shape[-1]
    return [(r, c) for r in range(window[0], window[1] + 1)
            for c in range(window[2], window[3] + 1)
            if torch.equal(img[:, r:r + p, c:c + p], patch)]


def test_grid_patches_without_jitter_are_the_grid():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 11, 11)  # span 3 * 3 + 2 * 1 = 11: no free room
    patches = grid_patches(x, patch=3, gap=1, jitter=0)
    assert patches.shape == (3, 9, 2, 3, 3)
    for b in range(3):
        for k in range(9):
            r, c = divmod(k, 3)
            assert torch.equal(patches[b, k],
                               x[b, :, 4 * r:4 * r + 3, 4 * c:4 * c + 3])


def test_grid_patches_jitter_stays_in_its_window_and_covers_it():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 13, 13)  # span 3 * 3 + 2 * 1 + 2 * 1 = 13
    patches = grid_patches(x, patch=3, gap=1, jitter=1, generator=g)
    seen = set()
    for b in range(64):
        for k in range(9):
            r, c = divmod(k, 3)
            base_r, base_c = 1 + 4 * r, 1 + 4 * c  # the cell's corner
            found = _find(x[b], patches[b, k], (base_r - 1, base_r + 1,
                                                base_c - 1, base_c + 1))
            assert len(found) == 1
            seen.add((found[0][0] - base_r, found[0][1] - base_c))
    assert seen == set(itertools.product((-1, 0, 1), repeat=2))


def test_grid_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match='needs 30 pixels'):
        grid_patches(torch.zeros(1, 1, 28, 28), patch=8, gap=2, jitter=1)


def test_neighbour_pairs_follow_the_table():
    feats = torch.arange(2 * 9, dtype=torch.float32).view(2, 9, 1)
    pairs, labels = neighbour_pairs(feats)
    assert pairs.shape == (16, 2) and labels.tolist() == list(range(8)) * 2
    for b in range(2):
        for label, (dr, dc) in enumerate(NEIGHBOURS):
            centre, other = pairs[8 * b + label].tolist()
            assert centre == 9 * b + 4
            assert other == 9 * b + (1 + dr) * 3 + (1 + dc)


def _maximal_reference(n_perm, n_tiles, seed):
    """Noroozi and Favaro's Algorithm 1 ("maximal"), in plain Python."""
    every = list(itertools.permutations(range(n_tiles)))
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(every), (1, ), generator=g))]
    while len(chosen) < n_perm:
        best, best_d = None, -1
        for j, p in enumerate(every):
            if j in chosen:
                continue
            d = sum(sum(a != b for a, b in zip(p, every[i])) for i in chosen)
            if d > best_d:
                best, best_d = j, d
        chosen.append(best)
    return [list(every[i]) for i in chosen]


@pytest.mark.parametrize('n_perm, n_tiles, seed', [(10, 4, 0), (24, 4, 3),
                                                   (30, 5, 1)])
def test_hamming_permutations_equal_the_reference(n_perm, n_tiles, seed):
    got = hamming_permutations(n_perm, n_tiles, seed)
    assert got.tolist() == _maximal_reference(n_perm, n_tiles, seed)


def test_nine_tile_set_is_spread_out():
    p = hamming_permutations(100)
    assert p.shape == (100, 9) and len({tuple(r) for r in p.tolist()}) == 100
    assert torch.equal(p.sort(1).values, torch.arange(9).expand(100, 9))
    d = (p[:, None] != p[None]).sum(-1).float()
    # mean pairwise distance above two random permutations' 9 * 8 / 9 = 8
    assert d.sum() / (100 * 99) > 8.0
    with pytest.raises(ValueError, match='expected 1..24'):
        hamming_permutations(25, 4)


def test_jigsaw_tiles_are_the_permuted_cells():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, 9, 9)
    perms = hamming_permutations(5, 9)
    tiles, labels = jigsaw_tiles(x, perms, tile=3, normalize=False,
                                 generator=g)  # tile = cell: no freedom
    assert tiles.shape == (16, 9, 2, 3, 3)
    assert set(labels.tolist()) <= set(range(5))
    for b in range(16):
        for k in range(9):
            r, c = divmod(int(perms[labels[b], k]), 3)
            assert torch.equal(tiles[b, k],
                               x[b, :, 3 * r:3 * r + 3, 3 * c:3 * c + 3])


def test_jigsaw_tiles_lie_in_their_cells_and_are_standardised():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 12, 12)
    perms = hamming_permutations(4, 9)
    raw, labels = jigsaw_tiles(x, perms, tile=2, normalize=False,
                               generator=torch.Generator().manual_seed(1))
    for b in range(8):
        for k in range(9):
            r, c = divmod(int(perms[labels[b], k]), 3)
            assert _find(x[b], raw[b, k], (4 * r, 4 * r + 2, 4 * c,
                                           4 * c + 2))
    tiles, _ = jigsaw_tiles(x, perms, tile=2, generator=g)
    assert torch.allclose(tiles.mean((3, 4)), torch.zeros(8, 9, 1),
                          atol=1e-5)
    assert torch.allclose(tiles.std((3, 4)), torch.ones(8, 9, 1), atol=1e-3)
    with pytest.raises(ValueError, match='Illegal tile size 5'):
        jigsaw_tiles(x, perms, tile=5)
    with pytest.raises(ValueError, match='permute range'):
        jigsaw_tiles(x, torch.zeros(2, 9, dtype=torch.long), tile=2)


def test_classifier_loss_against_linear_and_cross_entropy():
    torch.manual_seed(0)
    loss_fn = PretextClsLoss(6, 4)
    f, y = torch.randn(5, 6), torch.tensor([0, 3, 1, 2, 3])
    w, b = loss_fn.classifier.weight, loss_fn.classifier.bias
    ref = sum(-torch.log_softmax(f[i] @ w.t() + b, 0)[y[i]]
              for i in range(5)) / 5
    assert loss_fn(f, y).item() == pytest.approx(ref.item(), rel=1e-6)
    mlp = PretextClsLoss(6, 4, hidden_channels=8)
    loss, logits = mlp(f, y, return_logits=True)
    assert logits.shape == (5, 4)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item())
    with pytest.raises(ValueError, match='features of size 6'):
        loss_fn(torch.randn(5, 7), y)
    with pytest.raises(ValueError, match='one label per feature'):
        loss_fn(f, y[:3])
    with pytest.raises(ValueError, match='Illegal num_classes'):
        PretextClsLoss(6, 0)
