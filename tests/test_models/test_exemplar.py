"""The ExemplarMoCo algorithm and its head (LossHead with ExemplarLoss):
labels, queue, modes."""
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import (EXEMPLAR_V1_FMNIST_CONFIG, build_tiny_exemplar,
                           exemplar_views)


def prep(model, data):
    return model.data_preprocessor(data, True)


def test_loss_step_fills_both_queues_in_order():
    torch.manual_seed(0)
    model = build_tiny_exemplar(queue_len=10)
    model.train()
    keys0 = model.queue.keys.clone()
    seen = []
    orig = model.keys

    def spy(inputs):
        k = orig(inputs)
        seen.append(k)
        return k

    model.keys = spy
    for step, labels in enumerate([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]):
        out = model(**prep(model, exemplar_views(labels, seed=step)),
                    mode='loss')
        assert set(out) == {'loss', 'neg_excluded'}
        assert torch.isfinite(out['loss'])
        out['loss'].backward()  # enqueue happened; backward still works
    assert int(model.queue.ptr) == 12 % 10
    # slots 0, 1 were overwritten by the third batch's last two keys
    assert model.queue.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    all_k = torch.cat(seen)  # (12, D) in enqueue order
    assert torch.equal(model.queue.keys[2:10], all_k[2:10])
    assert torch.equal(model.queue.keys[0:2], all_k[10:12])
    assert not torch.equal(model.queue.keys, keys0)


def test_same_class_queue_entries_are_excluded():
    torch.manual_seed(0)
    model = build_tiny_exemplar(queue_len=8)
    model.queue.labels.copy_(torch.tensor([0, 0, 0, 0, 1, 1, -1, -1]))
    data = prep(model, exemplar_views([0, 0, 1, 2]))
    calls = []
    orig = model.head.loss

    def spy(q, k, queue_keys, labels, queue_labels):
        calls.append((q.detach(), k, queue_keys, labels, queue_labels))
        return orig(q, k, queue_keys, labels, queue_labels)

    model.head.loss = spy
    out = model(**data, mode='loss')
    q, k, queue_keys, labels, queue_labels = calls[0]
    assert labels.tolist() == [0, 0, 1, 2]
    assert queue_labels.tolist() == [0, 0, 0, 0, 1, 1, -1, -1]
    # fraction excluded: 4/8, 4/8, 2/8, 0/8
    assert out['neg_excluded'].item() == pytest.approx(10 / 32)
    # the value equals the loss built by hand
    t = model.head.loss_module.temperature
    total = 0.0
    for i in range(4):
        keep = queue_labels != labels[i]
        logits = torch.cat([(q[i] * k[i]).sum().view(1),
                            queue_keys[keep] @ q[i]]) / t
        total += -torch.log_softmax(logits, 0)[0]
    assert out['loss'].item() == pytest.approx(total.item() / 4, rel=1e-5)


def test_head_equals_mmpretrain_contrastive_head_when_labels_differ():
    """All labels distinct: MoCo's loss (mmpretrain's ContrastiveHead)."""
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    head = MODELS.build(dict(type='LossHead',
                             loss=dict(type='ExemplarLoss', temperature=0.2)))
    moco = MODELS.build(dict(type='ContrastiveHead',
                             loss=dict(type='CrossEntropyLoss'),
                             temperature=0.2))
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(6, 16, generator=g), dim=1)
    k = F.normalize(torch.randn(6, 16, generator=g), dim=1)
    queue = F.normalize(torch.randn(40, 16, generator=g), dim=1)
    ours = head.loss(q, k, queue, torch.arange(6), torch.arange(6, 46))
    l_pos = (q * k).sum(1, keepdim=True)
    ref = moco.loss(l_pos, q @ queue.t())
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    # and not when a queued key shares a query's class
    same = head.loss(q, k, queue, torch.arange(6), torch.arange(40) % 6)
    assert same.item() < ours.item() - 1e-3


@pytest.mark.parametrize('bad, match', [
    (dict(with_labels=False), "has no 'gt_label'"),
])
def test_unlabelled_data_is_a_clear_error(bad, match):
    model = build_tiny_exemplar()
    with pytest.raises(ValueError, match=match):
        model(**prep(model, exemplar_views([0, 1], **bad)), mode='loss')


def test_bad_labels_are_clear_errors():
    from mmpretrain.structures import DataSample
    model = build_tiny_exemplar()
    data = prep(model, exemplar_views([0, 1]))
    multi = [DataSample().set_gt_label([1, 2]), DataSample().set_gt_label(0)]
    with pytest.raises(ValueError, match='exactly one class index'):
        model(data['inputs'], multi, mode='loss')
    neg = [DataSample().set_gt_label(-1), DataSample().set_gt_label(0)]
    with pytest.raises(ValueError, match='class indices >= 0'):
        model(data['inputs'], neg, mode='loss')
    with pytest.raises(ValueError, match=r'expects 2 views .*got 3 views'):
        model(**prep(model, exemplar_views([0, 1], num_views=3)), mode='loss')
    with pytest.raises(ValueError, match='Illegal momentum'):
        build_tiny_exemplar(momentum=1.5)
    with pytest.raises(ValueError, match='Illegal temperature'):
        build_tiny_exemplar(head=dict(type='LossHead', loss=dict(
            type='ExemplarLoss', temperature=-1)))


def test_state_dict_holds_queues_and_key_encoder():
    model = build_tiny_exemplar(queue_len=12)
    model(**prep(model, exemplar_views([3, 4, 5])), mode='loss')
    sd = model.state_dict()
    for key in ('queue.keys', 'queue.labels', 'queue.ptr', 'encoder_k.steps'):
        assert key in sd, key
    assert sd['queue.labels'][:3].tolist() == [3, 4, 5]
    assert int(sd['queue.ptr']) == 3
    other = build_tiny_exemplar(queue_len=12)
    other.load_state_dict(sd)
    assert torch.equal(other.queue.keys, model.queue.keys)
    assert torch.equal(other.queue.labels, model.queue.labels)


def test_key_encoder_follows_query_encoder():
    torch.manual_seed(0)
    model = build_tiny_exemplar(momentum=0.5)
    data = prep(model, exemplar_views([0, 1, 2, 3]))
    model(**data, mode='loss')  # first update copies the query encoder
    src = list(model.backbone.parameters()) + list(model.neck.parameters())
    for p_k, p_q in zip(model.encoder_k.module.parameters(), src):
        assert torch.equal(p_k, p_q)
        assert not p_k.requires_grad
    with torch.no_grad():
        for p in src:
            p.add_(1.0)
    before = [p.clone() for p in model.encoder_k.module.parameters()]
    model(**data, mode='loss')
    for b, p_k, p_q in zip(before, model.encoder_k.module.parameters(), src):
        assert torch.allclose(p_k, 0.5 * b + 0.5 * p_q, atol=1e-6)


def test_v1_flavour_linear_neck_and_temperature():
    model = build_tiny_exemplar(config=EXEMPLAR_V1_FMNIST_CONFIG)
    assert type(model.neck).__name__ == 'LinearNeck'
    assert model.head.loss_module.temperature == 0.07
    out = model(**prep(model, exemplar_views([0, 1, 1, 2])), mode='loss')
    assert torch.isfinite(out['loss'])


def test_tensor_and_predict_modes():
    model = build_tiny_exemplar()
    model.eval()
    data = model.data_preprocessor(exemplar_views([0, 1]), False)
    feats = model(data['inputs'][0], mode='tensor')
    assert feats[-1].shape[:2] == (2, 64)
    out = model(data['inputs'][0], data['data_samples'], mode='predict')
    assert out[0].feat.shape == (16, )
    assert torch.allclose(out[0].feat.norm(), torch.tensor(1.), atol=1e-5)
    assert int(out[1].gt_label) == 1


def test_runs_under_autocast():
    torch.manual_seed(0)
    model = build_tiny_exemplar()
    data = prep(model, exemplar_views([0, 0, 1, 1]))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(**data, mode='loss')
    out['loss'].backward()
    assert torch.isfinite(out['loss'])
    assert model.queue.keys.dtype == torch.float32
    assert torch.allclose(model.queue.keys[:4].norm(dim=1), torch.ones(4),
                          atol=1e-2)
