"""SplitMask maths: masks, tokeniser, losses against slow references."""
import math

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules.splitmask import (SplitMaskGenerator, SplitMaskLoss,
                                           SplitMaskTokenizer, block_mask,
                                           block_masks, info_nce, patchify)


@pytest.mark.parametrize('mode,grid,ratio', [
    ('block', 14, None), ('block', 8, 0.5), ('block', (4, 6), 0.3),
    ('uniform', 8, None), ('uniform', 14, 0.25), ('uniform', (3, 5), 0.6)])
def test_subsets_disjoint_and_cover_all_patches(mode, grid, ratio):
    gen = SplitMaskGenerator(grid, mode=mode, ratio=ratio,
                             min_block_patches=4)
    ids_a, ids_b = gen(16, generator=torch.Generator().manual_seed(1))
    n = gen.num_patches
    assert ids_a.shape == (16, gen.num_a) and ids_b.shape == (16, gen.num_b)
    expected = round((ratio or (0.5 if mode == 'block' else 0.25)) * n)
    assert gen.num_a == expected and gen.num_a + gen.num_b == n
    for a, b in zip(ids_a.tolist(), ids_b.tolist()):
        assert not set(a) & set(b)
        assert sorted(a + b) == list(range(n))
    # different images get different subsets
    assert len({tuple(a) for a in ids_a.tolist()}) > 1


def test_masks_deterministic_with_generator():
    gen = SplitMaskGenerator(14)
    a1, b1 = gen(8, generator=torch.Generator().manual_seed(3))
    a2, b2 = gen(8, generator=torch.Generator().manual_seed(3))
    a3, _ = gen(8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(a1, a3)


def test_uniform_mode_sizes():
    ids_a, ids_b = SplitMaskGenerator(8, mode='uniform')(2)
    assert ids_a.shape == (2, 16) and ids_b.shape == (2, 48)  # A = 25%


@pytest.mark.parametrize('num', [0, 1, 17, 98, 150, 196])
def test_block_mask_exact_count(num):
    g = torch.Generator().manual_seed(num)
    assert int(block_mask(14, 14, num, generator=g).sum()) == num


def test_block_mask_pads_when_attempts_run_out_and_is_blocky():
    g = torch.Generator().manual_seed(0)
    m = block_mask(14, 14, 98, generator=g, max_attempts=1)
    assert int(m.sum()) == 98  # padded to the target
    # with enough attempts the mask is made of blocks: most masked patches
    # have a masked 4-neighbour
    m = block_mask(14, 14, 98, generator=g).reshape(14, 14).float()
    nb = F.conv2d(m[None, None], torch.tensor(
        [[[[0., 1, 0], [1, 0, 1], [0, 1, 0]]]]), padding=1)[0, 0]
    assert ((nb > 0) & (m > 0)).sum() >= 0.9 * m.sum()


def _slow_block_mask(height, width, num_masked, generator, min_block,
                     min_aspect, max_attempts):
    """The blockwise mask of one image, in plain Python (the reference)."""
    n = height * width
    mask, count = [False] * n, 0
    lo, hi = math.log(min_aspect), math.log(1.0 / min_aspect)
    draws = torch.rand(4 * max_attempts, generator=generator).tolist()
    for t in range(max_attempts):
        missing = num_masked - count
        if missing <= 0:
            break
        u_area, u_aspect, u_top, u_left = draws[4 * t:4 * t + 4]
        area = min_block + u_area * (max(missing, min_block) - min_block)
        aspect = math.exp(lo + u_aspect * (hi - lo))
        bh = min(height, max(1, round(math.sqrt(area * aspect))))
        bw = min(width, max(1, round(math.sqrt(area / aspect))))
        top = min(int(u_top * (height - bh + 1)), height - bh)
        left = min(int(u_left * (width - bw + 1)), width - bw)
        new = [i * width + j for i in range(top, top + bh)
               for j in range(left, left + bw) if not mask[i * width + j]]
        for k in new[:missing]:
            mask[k] = True
        count += min(len(new), missing)
    return torch.tensor(mask), count


@pytest.mark.parametrize('grid,num,min_block,min_aspect', [
    ((14, 14), 98, 16, 0.3), ((7, 7), 24, 4, 0.3), ((8, 12), 40, 4, 0.5),
    ((14, 14), 150, 4, 0.3)])
def test_block_masks_batched_equal_per_image_reference(grid, num, min_block,
                                                       min_aspect):
    """The whole batch at once gives, mask by mask, what the per-image
    loop gives with the same random numbers (every mask complete before the
    attempts run out, so no padding draw sits between images)."""
    h, w = grid
    batched = block_masks(64, h, w, num,
                          torch.Generator().manual_seed(3), min_block,
                          min_aspect)
    g = torch.Generator().manual_seed(3)
    for i in range(64):
        ref, count = _slow_block_mask(h, w, num, g, min_block, min_aspect, 100)
        assert count == num
        assert torch.equal(batched[i], ref), i
    # image i's mask does not depend on the batch size
    assert torch.equal(block_masks(5, h, w, num,
                                   torch.Generator().manual_seed(3),
                                   min_block, min_aspect), batched[:5])


def test_bad_mask_settings():
    with pytest.raises(ValueError, match='mask mode'):
        SplitMaskGenerator(8, mode='grid')
    with pytest.raises(ValueError, match='ratio: 1.0'):
        SplitMaskGenerator(8, ratio=1.0)
    with pytest.raises(ValueError, match='num_masked: 200'):
        block_mask(14, 14, 200)


def test_tokenizer_same_seed_same_codebook():
    t1 = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=64,
                            proj_dim=8, seed=5)
    t2 = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=64,
                            proj_dim=8, seed=5)
    t3 = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=64,
                            proj_dim=8, seed=6)
    assert torch.equal(t1.codebook, t2.codebook)
    assert torch.equal(t1.projection, t2.projection)
    assert not torch.equal(t1.codebook, t3.codebook)
    x = torch.randn(3, 1, 16, 16)
    assert torch.equal(t1(x), t2(x))
    tok = t1(x)
    assert tok.shape == (3, 16) and tok.dtype == torch.long
    assert 0 <= int(tok.min()) and int(tok.max()) < 64
    # invariant to per-patch brightness and contrast
    assert torch.equal(t1(3 * x + 2), tok)


def test_tokenizer_random_projection_is_nearest_code():
    t = SplitMaskTokenizer(patch_size=2, in_channels=3, vocab_size=32,
                           proj_dim=4)
    x = torch.randn(2, 3, 4, 4)
    tok = t(x)
    p = patchify(x, 2)  # (2, 4, 12)
    for i in range(2):
        for j in range(4):
            v = p[i, j]
            v = (v - v.mean()) / (v.var(unbiased=False) + t.eps).sqrt()
            z = F.normalize(v @ t.projection, dim=0)
            sims = [float(z @ c) for c in t.codebook]
            assert tok[i, j] == max(range(32), key=lambda k: sims[k])


@pytest.mark.parametrize('mode', ['random_patches', 'kmeans'])
def test_data_tokenizer_fit_deterministic_and_state_dict(mode):
    patches = torch.randn(500, 16)
    t = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=32,
                           mode=mode, seed=2)
    with pytest.raises(RuntimeError, match='no codebook'):
        t(torch.randn(1, 1, 8, 8))
    t.fit(patches, iters=3)
    t2 = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=32,
                            mode=mode, seed=2).fit(patches, iters=3)
    assert torch.equal(t.codebook, t2.codebook)
    sd = t.state_dict()
    assert {'codebook', 'fitted', 'projection'} <= set(sd)
    fresh = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=32,
                               mode=mode, seed=9)
    fresh.load_state_dict(sd)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh(x), t(x))
    if mode == 'random_patches':  # codes are data patches
        normed = F.normalize(patches, dim=1)
        d = torch.cdist(t.codebook, normed).min(dim=1).values
        assert d.max() < 1e-3  # cdist float error


def test_tokenizer_bad_input():
    t = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=8)
    with pytest.raises(ValueError, match=r'30x32 .* patch size 4'):
        t(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match='in_channels|shape'):
        t(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='tokenizer mode'):
        SplitMaskTokenizer(mode='dalle')
    tk = SplitMaskTokenizer(patch_size=4, in_channels=1, vocab_size=64,
                            mode='kmeans')
    with pytest.raises(ValueError, match='10 patches for a vocabulary of 64'):
        tk.fit(torch.randn(10, 16))


def slow_ce(logits, targets):
    total, n = 0.0, 0
    for b in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            row = logits[b, k].tolist()
            m = max(row)
            lse = m + math.log(sum(math.exp(v - m) for v in row))
            total += lse - row[int(targets[b, k])]
            n += 1
    return total / n


def slow_info_nce(q, k, t, offset):
    total = 0.0
    for i in range(q.shape[0]):
        sims = [float(q[i] @ k[j]) / t for j in range(k.shape[0])]
        m = max(sims)
        lse = m + math.log(sum(math.exp(s - m) for s in sims))
        total += lse - sims[offset + i]
    return total / q.shape[0]


def test_info_nce_matches_loop():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(4, 6), dim=1)
    k = F.normalize(torch.randn(12, 6), dim=1)
    for off in (0, 4, 8):
        assert info_nce(q, k, 0.2, off).item() == pytest.approx(
            slow_info_nce(q, k, 0.2, off), rel=1e-5)


@pytest.mark.parametrize('proj_dim', [None, 5])
@pytest.mark.parametrize('weights', [(1.0, 1.0), (0.5, 2.0)])
@pytest.mark.parametrize('with_gather', [False, True])
def test_splitmask_loss_matches_slow_reference(proj_dim, weights,
                                               with_gather):
    torch.manual_seed(1)
    B, L, C, V = 3, 8, 6, 11
    fn = SplitMaskLoss(C, vocab_size=V, proj_dim=proj_dim, temperature=0.2,
                       mim_weight=weights[0], contrastive_weight=weights[1])
    ids_a, ids_b = SplitMaskGenerator((2, 4), mode='uniform', ratio=0.25)(B)
    dec_a, dec_b = torch.randn(B, L, C), torch.randn(B, L, C)
    tokens = torch.randint(V, (B, L))
    # another rank's descriptors before ours: our rows start at 2
    other = F.normalize(torch.randn(2, proj_dim or C), dim=1)

    def gather(z):
        return torch.cat([other, z]), 2

    out = fn(dec_a, dec_b, ids_a, ids_b, tokens,
             gather=gather if with_gather else None)

    # slow reference
    W, bias = fn.predictor.weight, fn.predictor.bias
    mims = []
    for dec, ids in ((dec_a, ids_b), (dec_b, ids_a)):
        logits = torch.stack([torch.stack([dec[b, j] @ W.t() + bias
                                           for j in ids[b].tolist()])
                              for b in range(B)])
        targets = torch.stack([tokens[b, ids[b]] for b in range(B)])
        mims.append(slow_ce(logits.detach(), targets))
    mim = sum(mims) / 2

    def desc(dec):
        pooled = torch.stack([dec[b].sum(0) / L for b in range(B)])
        return F.normalize(fn.projector(pooled), dim=1).detach()

    za, zb = desc(dec_a), desc(dec_b)
    if with_gather:
        nce = 0.5 * (slow_info_nce(za, torch.cat([other, zb]), 0.2, 2) +
                     slow_info_nce(zb, torch.cat([other, za]), 0.2, 2))
    else:
        nce = 0.5 * (slow_info_nce(za, zb, 0.2, 0) +
                     slow_info_nce(zb, za, 0.2, 0))
    assert out['mim'].item() == pytest.approx(mim, rel=1e-5)
    assert out['nce'].item() == pytest.approx(nce, rel=1e-5)
    assert out['loss'].item() == pytest.approx(
        weights[0] * mim + weights[1] * nce, rel=1e-5)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert fn.predictor.weight.grad.abs().sum() > 0


def test_single_branch_loss_has_no_nce():
    fn = SplitMaskLoss(4, vocab_size=5)
    ids_a, ids_b = SplitMaskGenerator(4, ratio=0.5, min_block_patches=2)(2)
    out = fn(None, torch.randn(2, 16, 4), ids_a, ids_b,
             torch.randint(5, (2, 16)))
    assert out['nce'].item() == 0.0 and out['loss'].item() > 0
    with pytest.raises(ValueError, match='temperature'):
        SplitMaskLoss(4, temperature=0.0)
