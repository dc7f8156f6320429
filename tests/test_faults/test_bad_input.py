"""Fault injection: bad numeric input (empty batch, NaN / Inf in a tensor,
a NaN or non-positive temperature) is a ``ValueError`` naming the tensor and
the bad value, and the checks which read values back from the device run
only when ``PeriodicCheck`` says so (at most once per N iterations)."""
import math

import pytest
import torch

from mm_instdisc.modules import (AdCoLoss, AdversarialNegatives, ExemplarLoss,
                                 ExemplarQueue, ParametricInstanceLoss,
                                 SplitMaskLoss)
from mm_instdisc.modules.splitmask import info_nce
from tests.helpers import unit_f32

NAN = float('nan')


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize('make, match', [
    (lambda t: AdCoLoss(temperature=t), r'Illegal temperature: {}'),
    (lambda t: AdCoLoss(mem_temperature=t),
     r'Illegal mem_temperature \(mem_t\): {}'),
    (lambda t: ExemplarLoss(temperature=t), r'Illegal temperature: {}'),
    (lambda t: SplitMaskLoss(4, vocab_size=8, temperature=t),
     r'Illegal temperature: {}'),
    (lambda t: ParametricInstanceLoss(10, 4, temperature=t),
     r'Illegal temperature: {}'),
])
@pytest.mark.parametrize('value, shown', [
    (NAN, 'nan'), (float('inf'), 'inf'), (0.0, '0.0'), (-0.07, '-0.07')])
def test_bad_temperature_at_construction(make, match, value, shown):
    with pytest.raises(ValueError, match=match.format(shown)):
        make(value)


def with_nan(x):
    x = x.detach().clone()
    x.view(-1)[1] = NAN
    return x


def adco_call(loss_fn, q=None, k=None, negatives=None):
    d = 4
    q = unit_f32(2, d, seed=1) if q is None else q
    k = unit_f32(2, d, seed=2) if k is None else k
    negatives = (unit_f32(d, 3, seed=3, dim=0) if negatives is None
                 else negatives)
    return loss_fn(q, k, negatives)


def exemplar_call(loss_fn, q=None, k=None, queue_keys=None):
    q = unit_f32(2, 4, seed=1) if q is None else q
    k = unit_f32(2, 4, seed=2) if k is None else k
    queue_keys = unit_f32(5, 4, seed=3) if queue_keys is None else queue_keys
    return loss_fn(q, k, queue_keys, torch.tensor([0, 1]),
                   torch.tensor([1, 2, 3, -1, -1]))


def splitmask_call(loss_fn, dec_a=None, dec_b=None):
    ids = torch.arange(6).reshape(1, 6).repeat(2, 1)
    g = torch.Generator().manual_seed(0)
    dec_a = torch.randn(2, 6, 8, generator=g) if dec_a is None else dec_a
    dec_b = torch.randn(2, 6, 8, generator=g) if dec_b is None else dec_b
    ids = ids[:dec_a.shape[0]]
    return loss_fn(dec_a, dec_b, ids[:, :3], ids[:, 3:],
                   torch.randint(16, (dec_a.shape[0], 6), generator=g))


def parametric_call(loss_fn, feats=None):
    feats = unit_f32(2, 4, seed=1) if feats is None else feats
    return loss_fn(feats, torch.arange(feats.shape[0]))


BAD_INPUTS = {
    'adco q empty': (lambda: adco_call(AdCoLoss(), q=torch.zeros(0, 4)),
                     r'Empty batch: AdCo queries q has shape \(0, 4\)'),
    'adco q nan': (lambda: adco_call(AdCoLoss(), q=with_nan(unit_f32(
                       2, 4, seed=1))),
                   r'AdCo queries q contains 1 non-finite values \(1 NaN\)'),
    'adco k nan': (lambda: adco_call(AdCoLoss(), k=with_nan(unit_f32(
                       2, 4, seed=2))),
                   r'AdCo keys k contains 1 non-finite values \(1 NaN\)'),
    'adco negatives nan': (
        lambda: adco_call(AdCoLoss(),
                          negatives=with_nan(unit_f32(4, 3, seed=3, dim=0))),
        r'AdCo negatives contains 1 non-finite values \(1 NaN\)'),
    'adco negatives inf': (
        lambda: adco_call(AdCoLoss(), negatives=unit_f32(4, 3, seed=3, dim=0).
                          index_fill(1, torch.tensor([2]), float('inf'))),
        r'AdCo negatives contains 4 non-finite values \(0 NaN\)'),
    'adco init keys nan': (
        lambda: AdversarialNegatives(4, 4).init_from_keys(
            with_nan(unit_f32(2, 4, seed=1))),
        r'AdversarialNegatives.init_from_keys contains 1 non-finite'),
    'exemplar q empty': (
        lambda: ExemplarLoss()(torch.zeros(0, 4), torch.zeros(0, 4),
                               unit_f32(5, 4, seed=3)),
        r'Empty batch: Exemplar queries q has shape \(0, 4\)'),
    'exemplar q nan': (
        lambda: exemplar_call(ExemplarLoss(),
                              q=with_nan(unit_f32(2, 4, seed=1))),
        r'Exemplar queries q contains 1 non-finite values \(1 NaN\)'),
    'exemplar k nan': (
        lambda: exemplar_call(ExemplarLoss(),
                              k=with_nan(unit_f32(2, 4, seed=2))),
        r'Exemplar keys k contains 1 non-finite values \(1 NaN\)'),
    'exemplar queue nan': (
        lambda: exemplar_call(ExemplarLoss(),
                              queue_keys=with_nan(unit_f32(5, 4, seed=3))),
        r'Exemplar queue_keys contains 1 non-finite values \(1 NaN\)'),
    'exemplar enqueue nan': (
        lambda: ExemplarQueue(8, 4).enqueue(with_nan(unit_f32(2, 4, seed=1))),
        r'ExemplarQueue.enqueue contains 1 non-finite values \(1 NaN\)'),
    'splitmask dec_a empty': (
        lambda: splitmask_call(SplitMaskLoss(8, vocab_size=16),
                               dec_a=torch.zeros(0, 6, 8),
                               dec_b=torch.zeros(0, 6, 8)),
        r'Empty batch: SplitMask decoder output dec_a has shape '
        r'\(0, 6, 8\)'),
    'splitmask dec_a nan': (
        lambda: splitmask_call(SplitMaskLoss(8, vocab_size=16),
                               dec_a=with_nan(torch.randn(2, 6, 8))),
        r'SplitMask decoder output dec_a contains 1 non-finite values '
        r'\(1 NaN\)'),
    'splitmask dec_b nan': (
        lambda: splitmask_call(SplitMaskLoss(8, vocab_size=16),
                               dec_b=with_nan(torch.randn(2, 6, 8))),
        r'SplitMask decoder output dec_b contains 1 non-finite values '
        r'\(1 NaN\)'),
    'info_nce q empty': (
        lambda: info_nce(torch.zeros(0, 4), unit_f32(3, 4, seed=1), 0.2),
        r'Empty batch: InfoNCE queries q has shape \(0, 4\)'),
    'parametric feats empty': (
        lambda: parametric_call(ParametricInstanceLoss(10, 4),
                                torch.zeros(0, 4)),
        r'Empty batch: Parametric instance features feats has shape '
        r'\(0, 4\)'),
    'parametric feats nan': (
        lambda: parametric_call(ParametricInstanceLoss(10, 4),
                                with_nan(unit_f32(2, 4, seed=1))),
        r'Parametric instance features feats contains 1 non-finite values '
        r'\(1 NaN\)'),
}


@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_bad_input_names_the_tensor(case):
    call, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------- PeriodicCheck
# (clean call, call with a NaN input) of a loss built with check_interval
PERIODIC = {
    'AdCoLoss': lambda n: (
        lambda fn: adco_call(fn),
        lambda fn: adco_call(fn, k=with_nan(unit_f32(2, 4, seed=2))),
        AdCoLoss(check_interval=n)),
    'ExemplarLoss': lambda n: (
        lambda fn: exemplar_call(fn),
        lambda fn: exemplar_call(
            fn, queue_keys=with_nan(unit_f32(5, 4, seed=3))),
        ExemplarLoss(check_interval=n)),
    'ExemplarQueue': lambda n: (
        lambda queue: queue.enqueue(unit_f32(2, 4, seed=1)),
        lambda queue: queue.enqueue(with_nan(unit_f32(2, 4, seed=1))),
        ExemplarQueue(8, 4, check_interval=n)),
    'SplitMaskLoss': lambda n: (
        lambda fn: splitmask_call(fn),
        lambda fn: splitmask_call(fn, dec_b=with_nan(torch.randn(2, 6, 8))),
        SplitMaskLoss(8, vocab_size=16, check_interval=n)),
    'ParametricInstanceLoss': lambda n: (
        lambda fn: parametric_call(fn),
        lambda fn: parametric_call(fn, with_nan(unit_f32(2, 4, seed=1))),
        ParametricInstanceLoss(10, 4, check_interval=n)),
}


@pytest.mark.parametrize('name', list(PERIODIC))
def test_periodic_check_skips_the_sync_checks_between_checks(name):
    clean, bad, module = PERIODIC[name](3)
    clean(module)  # call 1: checked (always), passes
    bad(module)  # call 2: not checked, the NaN goes through
    clean(module)  # call 3: not checked
    with pytest.raises(ValueError, match='non-finite'):
        bad(module)  # call 4: checked
    bad(module)  # call 5: not checked again


@pytest.mark.parametrize('name', list(PERIODIC))
def test_first_call_is_checked_and_zero_never_checks(name):
    _, bad, module = PERIODIC[name](100)
    with pytest.raises(ValueError, match='non-finite'):
        bad(module)
    _, bad, module = PERIODIC[name](0)
    for _ in range(3):
        bad(module)


def test_shape_errors_are_raised_every_call_and_do_not_count():
    """Calls that fail a (sync-free) shape check do not use up the check:
    the first call that gets past them is still checked."""
    loss_fn = AdCoLoss(check_interval=100)
    for _ in range(3):
        with pytest.raises(ValueError, match='Empty batch'):
            adco_call(loss_fn, q=torch.zeros(0, 4))
    with pytest.raises(ValueError, match='AdCo queries q contains'):
        adco_call(loss_fn, q=with_nan(unit_f32(2, 4, seed=1)))
    assert math.isfinite(float(adco_call(loss_fn)[0]))


def test_adco_symmetric_checks_every_input_once_per_step():
    """``symmetric`` counts as one call and checks all four inputs, so the
    second direction is not skipped whatever the interval's parity."""
    loss_fn = AdCoLoss(check_interval=2)
    q1, q2 = unit_f32(2, 4, seed=1), unit_f32(2, 4, seed=2)
    k1, k2 = unit_f32(2, 4, seed=3), unit_f32(2, 4, seed=4)
    negatives = unit_f32(4, 3, seed=5, dim=0)
    loss_fn.symmetric(q1, q2, k1, k2, negatives)  # step 1: checked
    loss_fn.symmetric(q1, with_nan(q2), k1, k2, negatives)  # step 2: not
    with pytest.raises(ValueError, match='AdCo queries q2 contains'):
        loss_fn.symmetric(q1, with_nan(q2), k1, k2, negatives)  # step 3
    with pytest.raises(ValueError, match='AdCo keys k1 contains'):
        AdCoLoss().symmetric(q1, q2, with_nan(k1), k2, negatives)
