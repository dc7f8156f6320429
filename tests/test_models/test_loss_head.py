"""LossHead: the one head, building its loss from the registry; the losses
are registered; checkpoint keys are those of the per-method heads it
replaced; old head configs and misplaced loss arguments are clear errors."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import mm_instdisc.models  # noqa: F401
from mm_instdisc.models.heads.loss_head import REPLACED
from mm_instdisc.modules import NPIDLoss
from tests.helpers import (build_splitmask, build_tiny_adco,
                           build_tiny_exemplar, build_tiny_npid)


def test_head_builds_the_registered_loss_and_computes_it():
    head = MODELS.build(dict(type='LossHead', loss=dict(
        type='NPIDLoss', mode='softmax', temperature=0.1)))
    assert type(head.loss_module) is NPIDLoss
    g = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    feats = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    idx = torch.tensor([0, 5, 7, 19])
    ref = F.cross_entropy(feats @ bank.t() / 0.1, idx)  # eq. 2, full softmax
    assert head.loss(feats, idx, bank).item() == pytest.approx(ref.item(),
                                                               rel=1e-5)


@pytest.mark.parametrize('loss', sorted(set(REPLACED.values())))
def test_every_loss_is_registered(loss):
    assert MODELS.get(loss) is not None


@pytest.mark.parametrize('build, keys', [
    (build_tiny_npid, {'head.loss_module.log_z', 'head.loss_module.z_calls'}),
    (build_splitmask, {'head.loss_module.predictor.weight',
                       'head.loss_module.predictor.bias'}),
    (build_tiny_adco, set()),
    (build_tiny_exemplar, set()),
])
def test_checkpoint_keys_are_the_replaced_heads(build, keys):
    """Every head tensor lives under head.loss_module, where the per-method
    heads kept it, so checkpoints from before LossHead load unchanged."""
    got = {k for k in build().state_dict() if k.startswith('head.')}
    assert got == keys


def test_old_head_type_names_its_replacement():
    with pytest.raises(TypeError) as e:
        MODELS.build(dict(type='NPIDHead', loss_mode='nce', num_negatives=8))
    msg = str(e.value)
    assert "head type 'NPIDHead' was replaced by LossHead" in msg
    assert ("head=dict(type='LossHead', loss=dict(type='NPIDLoss', "
            "num_negatives=8, mode='nce'))") in msg
    with pytest.raises(TypeError, match="loss=dict\\(type='SplitMaskLoss'"):
        MODELS.build(dict(type='SplitMaskHead', embed_dims=8))


def test_loss_arguments_on_the_head_are_a_clear_error():
    with pytest.raises(TypeError, match=r'num_negatives=8.*'
                       r'model\.head\.loss\.<key>'):
        MODELS.build(dict(type='LossHead', loss=dict(type='NPIDLoss'),
                          num_negatives=8))
    with pytest.raises(TypeError, match='takes loss=dict'):
        MODELS.build(dict(type='LossHead'))


def test_old_parametric_head_error_prints_a_valid_config():
    """ParametricInstance hands its num_instances / feat_dim to a LossHead's
    loss only; an old head type gets the replacement error, with no nested
    loss argument in the printed config."""
    with pytest.raises(TypeError) as e:
        MODELS.build(dict(
            type='ParametricInstance', num_instances=10,
            backbone=dict(type='ResNet', depth=18),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='ParametricInstanceHead', temperature=0.07)))
    msg = str(e.value)
    assert ("loss=dict(type='ParametricInstanceLoss', temperature=0.07))"
            in msg), msg
