"""ParametricInstance (NPID's parametric-softmax baseline) on a tiny ResNet."""
import pytest
import torch

from tests.helpers import PARAMETRIC_CONFIG, npid_batch


def build_tiny(num_instances=32, head=None):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    cfg = Config.fromfile(PARAMETRIC_CONFIG).model
    cfg.num_instances = num_instances
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels = 64
    cfg.feat_dim = cfg.neck.out_channels = 16
    cfg.head.loss.update(head or {})
    return MODELS.build(cfg)


def test_loss_is_the_module_on_the_embedding():
    torch.manual_seed(0)
    model = build_tiny()
    data = model.data_preprocessor(npid_batch([1, 4, 9, 31]), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss', 'inst_acc'}
    f = model.embed(data['inputs'])
    expected = model.head.loss_module(f, torch.tensor([1, 4, 9, 31]))
    assert losses['loss'].item() == pytest.approx(expected.item(), rel=1e-5)
    losses['loss'].backward()
    w = model.head.loss_module.weight
    assert w.shape == (32, 16) and w.grad is not None
    assert model.neck.fc.weight.grad.abs().sum() > 0


def test_sgd_on_a_fixed_batch_learns_the_instances():
    torch.manual_seed(0)
    model = build_tiny(head=dict(temperature=0.1))
    idx = [0, 3, 5, 8, 13, 21, 22, 30]
    data = model.data_preprocessor(npid_batch(idx), True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    losses = []
    for _ in range(30):
        out = model(**data, mode='loss')
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
        losses.append(out['loss'].item())
    assert losses[0] == pytest.approx(torch.tensor(32.).log().item(),
                                      abs=0.3)
    assert losses[-1] < 0.05 * losses[0]
    # train mode (batch statistics, as the loss saw them): 30 steps of a
    # fast lr leave BN's running statistics behind
    with torch.no_grad():
        v = model.embed(data['inputs'])
        pred = model.head.loss_module.logits(v).argmax(1)
    assert pred.tolist() == idx
    assert model(**data, mode='loss')['inst_acc'].item() == 100.0


def test_embed_predict_and_tensor_modes():
    model = build_tiny()
    model.eval()
    data = model.data_preprocessor(npid_batch([0, 1, 2]), False)
    v = model.embed(data['inputs'])
    assert v.shape == (3, 16)
    assert torch.allclose(v.norm(dim=1), torch.ones(3), atol=1e-5)
    out = model(data['inputs'][0], data['data_samples'], mode='predict')
    assert torch.allclose(out[0].feat, v[0], atol=1e-6)
    feats = model(data['inputs'][0], mode='tensor')
    assert feats[-1].shape[:2] == (3, 64)


def test_classifier_in_state_dict():
    sd = build_tiny().state_dict()
    assert sd['head.loss_module.weight'].shape == (32, 16)
    assert not any('memory_bank' in k for k in sd)


def test_missing_sample_idx_is_a_clear_error():
    model = build_tiny()
    data = model.data_preprocessor(npid_batch([0, 1], with_idx=False), True)
    with pytest.raises(ValueError, match="no 'sample_idx'"):
        model(**data, mode='loss')


def test_index_beyond_num_instances_is_a_clear_error():
    model = build_tiny(num_instances=8)
    data = model.data_preprocessor(npid_batch([3, 12]), True)
    with pytest.raises(ValueError, match='num_instances must equal the '
                       'training set size'):
        model(**data, mode='loss')


def test_conflicting_head_sizes_are_a_clear_error():
    with pytest.raises(ValueError, match='head.loss.num_instances=10 differs'):
        build_tiny(num_instances=32, head=dict(num_instances=10))


def test_config_matches_npid_but_the_model():
    """Same backbone, neck, data, optimizer and schedule as NPID's
    Fashion-MNIST config; no memory bank or MemoryBankHook."""
    from mmengine.config import Config

    from tests.helpers import FMNIST_CONFIG
    par, npid = Config.fromfile(PARAMETRIC_CONFIG), Config.fromfile(
        FMNIST_CONFIG)
    assert par.model.type == 'ParametricInstance'
    assert par.model.num_instances == npid.model.bank_size == 60000
    for key in ('backbone', 'neck', 'data_preprocessor', 'feat_dim'):
        assert par.model[key] == npid.model[key], key
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator',
                'test_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'val_cfg', 'auto_scale_lr'):
        assert par[key] == npid[key], key
    hooks = [h.type for h in par.custom_hooks]
    assert 'KNNReferenceHook' in hooks and 'MemoryBankHook' not in hooks
