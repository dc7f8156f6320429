"""The AdCo algorithm: modes, init phase, loss/gradient routing, variants."""
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import adco_views, build_tiny_adco


def prep(model, data):
    return model.data_preprocessor(data, True)


def query_params(model):
    return list(model.backbone.parameters()) + list(model.neck.parameters())


def test_init_phase_fills_negatives_then_resets_key_encoder():
    torch.manual_seed(0)
    model = build_tiny_adco(num_negatives=10)
    assert not model.negatives.initialised
    for step in range(3):
        out = model(**prep(model, adco_views(4, seed=step)), mode='loss')
        assert set(out) == {'loss', 'adv_ce', 'neg_prob', 'neg_sim_max',
                            'neg_sim_mean', 'pos_sim'}
        assert torch.isfinite(out['loss'])
        assert int(model.negatives.num_filled) == min(4 * step, 10)
        out['loss'].backward()
        # parameters change between steps, as an optimizer would
        with torch.no_grad():
            for p in query_params(model):
                p.add_(0.01)
        model.flush_negatives_init()
        assert int(model.negatives.num_filled) == min(4 * (step + 1), 10)
    assert model.negatives.initialised
    # key encoder == query encoder after the last column was filled
    for p_k, p_q in zip(model.encoder_k.module.parameters(),
                        query_params(model)):
        assert torch.equal(p_k, p_q)
    assert torch.allclose(model.negatives.weight.norm(dim=0), torch.ones(10),
                          atol=1e-5)


def test_init_phase_without_reset_keeps_the_key_encoder():
    """reset_key_encoder=False: after the last column is filled the key
    encoder is still its moving average, not a copy of the query encoder."""
    torch.manual_seed(0)
    model = build_tiny_adco(num_negatives=8, reset_key_encoder=False)
    before = [p.detach().clone() for p in model.encoder_k.module.parameters()]
    for step in range(2):
        out = model(**prep(model, adco_views(4, seed=step)), mode='loss')
        out['loss'].backward()
        with torch.no_grad():
            for p in query_params(model):
                p.add_(0.01)
        model.flush_negatives_init()
    assert model.negatives.initialised
    keys = list(model.encoder_k.module.parameters())
    assert any(not torch.equal(p_k, p_q)
               for p_k, p_q in zip(keys, query_params(model)))
    # ... and it moved by its moving average only (not reset, not frozen)
    assert any(not torch.equal(p_k, p_0) for p_k, p_0 in zip(keys, before))


def test_init_phase_loss_uses_only_the_own_key():
    torch.manual_seed(0)
    model = build_tiny_adco(num_negatives=12)
    data = prep(model, adco_views(4))
    seen = []
    orig = model.head.loss

    def spy(q, k, negatives, pos_offset=0, batch_negatives=None):
        seen.append(batch_negatives)
        return orig(q, k, negatives, pos_offset, batch_negatives)

    model.head.loss = spy
    model(**data, mode='loss')
    model.flush_negatives_init()
    model.negatives.num_filled.fill_(12)
    model(**data, mode='loss')
    assert seen == [False, None]  # init phase, then the configured default


def test_loss_value_is_encoder_loss_and_gradients_are_routed():
    """`loss` has the encoder loss's value; its gradient is the encoder
    loss's for the encoder and the mem_t loss's for the negatives."""
    torch.manual_seed(0)
    model = build_tiny_adco(negatives_init='random')
    model.train()
    data = prep(model, adco_views(4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    out = model(**data, mode='loss')
    out['loss'].backward()
    g_enc = [p.grad.clone() for p in query_params(model)]
    g_neg = model.negatives.weight.grad.clone()

    # the same forward, by hand, with the two losses separately
    model.load_state_dict(state)
    model.zero_grad()
    torch.set_rng_state(rng)
    model.encoder_k.update_parameters(
        torch.nn.Sequential(model.backbone, model.neck))
    q = model.embed(data['inputs'][0])
    k = model.keys(data['inputs'][1])
    enc, adv = model.head.loss(q, k, model.negatives())
    assert out['loss'].item() == pytest.approx(enc.item(), rel=1e-6)
    assert out['adv_ce'].item() == pytest.approx(adv.item(), rel=1e-6)
    enc_grads = torch.autograd.grad(enc, query_params(model),
                                    allow_unused=True)
    neg_grad, = torch.autograd.grad(adv, [model.negatives.weight])
    for a, b in zip(g_enc, enc_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    assert torch.allclose(g_neg, neg_grad, rtol=1e-4, atol=1e-7)


def test_symmetric_uses_both_views_both_ways():
    torch.manual_seed(0)
    model = build_tiny_adco(negatives_init='random', symmetric=True)
    calls = []
    orig = model.head.loss_module.symmetric

    def spy(*args, **kwargs):
        calls.append(args)
        return orig(*args, **kwargs)

    model.head.loss_module.symmetric = spy
    out = model(**prep(model, adco_views(4)), mode='loss')
    out['loss'].backward()
    assert len(calls) == 1
    q1, q2, k1, k2 = calls[0][:4]
    assert q1.requires_grad and q2.requires_grad
    assert not k1.requires_grad and not k2.requires_grad
    assert model.negatives.weight.grad.abs().sum() > 0


def test_multi_crop_sums_query_crops_against_the_key_crop():
    torch.manual_seed(0)
    model = build_tiny_adco(negatives_init='random', multi_crop=True)
    calls = []
    orig = model.head.loss

    def spy(q, k, negatives, pos_offset=0, batch_negatives=None):
        calls.append((q.shape, k.shape))
        return orig(q, k, negatives, pos_offset, batch_negatives)

    model.head.loss = spy
    data = prep(model, adco_views(4, sizes=(28, 28, 20, 16)))
    out = model(**data, mode='loss')
    out['loss'].backward()
    assert len(calls) == 3  # one per query crop
    assert torch.isfinite(out['loss'])
    assert model.negatives.weight.grad.abs().sum() > 0


def test_bad_configs():
    with pytest.raises(ValueError, match='cannot be combined'):
        build_tiny_adco(symmetric=True, multi_crop=True)
    with pytest.raises(ValueError, match='mem_temperature'):
        build_tiny_adco(head=dict(type='LossHead', loss=dict(
            type='AdCoLoss', mem_temperature=0.0)))
    with pytest.raises(ValueError, match='Illegal init'):
        build_tiny_adco(negatives_init='zeros')
    with pytest.raises(ValueError, match='Illegal momentum'):
        build_tiny_adco(momentum=0.999 + 1)


def test_wrong_number_of_views():
    model = build_tiny_adco()
    with pytest.raises(ValueError, match='expects 2 views'):
        model(**prep(model, adco_views(2, sizes=(28, 28, 28))), mode='loss')
    mc = build_tiny_adco(multi_crop=True)
    with pytest.raises(ValueError, match='at least one query view'):
        mc(**prep(mc, adco_views(2, sizes=(28, ))), mode='loss')


def test_tensor_and_predict_modes():
    model = build_tiny_adco()
    model.eval()
    data = model.data_preprocessor(adco_views(2), False)
    feats = model(data['inputs'][0], mode='tensor')
    assert feats[-1].shape[:2] == (2, 64)
    out = model(data['inputs'][0], data['data_samples'], mode='predict')
    assert out[0].feat.shape == (16, )
    assert torch.allclose(out[0].feat.norm(), torch.tensor(1.), atol=1e-5)


def test_loss_over_unwritten_keys_is_an_error():
    """The keys of an initialisation step have one writer (the hook, or the
    loop's own flush_negatives_init call); forgetting it fails loudly."""
    model = build_tiny_adco()
    model(**prep(model, adco_views(2)), mode='loss')
    with pytest.raises(RuntimeError, match='AdCoNegativesInitHook'):
        model(**prep(model, adco_views(2)), mode='loss')
    assert model.flush_negatives_init() == 2
    assert torch.isfinite(model(**prep(model, adco_views(2)),
                                mode='loss')['loss'])


def test_keys_are_unit_and_detached():
    model = build_tiny_adco()
    k = model.keys(prep(model, adco_views(3))['inputs'][1])
    assert not k.requires_grad
    assert torch.allclose(k.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(F.normalize(k, dim=1), k)


@pytest.mark.parametrize('overrides', [
    dict(), dict(negatives_init='random'),
    dict(negatives_init='random', symmetric=True),
    dict(negatives_init='random', multi_crop=True)
])
def test_runs_under_autocast(overrides):
    """Mixed precision (CPU bfloat16 here; fp16 on GPU goes the same way)."""
    torch.manual_seed(0)
    model = build_tiny_adco(**overrides)
    sizes = (28, 28, 20) if overrides.get('multi_crop') else (28, 28)
    data = prep(model, adco_views(4, sizes=sizes))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(**data, mode='loss')
    out['loss'].backward()
    assert torch.isfinite(out['loss'])
    assert model.negatives.weight.grad.dtype == torch.float32
    model.flush_negatives_init()
    assert torch.isfinite(model.negatives.weight).all()
