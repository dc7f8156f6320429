"""RotationPred, RelativeLoc and JigsawPuzzle built from the shipped
Fashion-MNIST configs (at a tiny width): shapes, the loss the modules
define, checkpointed permutation set, and that each task is learnable on a
fixed batch (its pretext accuracy rises far above chance)."""
import pytest
import torch
from mmengine.config import Config

CONFIGS = {
    'RotationPred': 'configs/pretext/rotation-pred_resnet18-w32s2_1xb256-'
                    'bf16-cos-15min_fashion-mnist.py',
    'RelativeLoc': 'configs/pretext/relative-loc_resnet18-w32s2_1xb256-bf16-'
                   'cos-15min_fashion-mnist.py',
    'JigsawPuzzle': 'configs/pretext/jigsaw_resnet18-w32s2_1xb256-bf16-cos-'
                    '15min_fashion-mnist.py',
    'MaskedIntensityPred': 'configs/pretext/masked-intensity_resnet18-w32s2_'
                           '1xb256-bf16-cos-15min_fashion-mnist.py',
}
# pooled features of the tiny network (width 8: 64 channels) per classifier
# input: one image, a pair of patches, the recipe's four tiles (2x2)
IN_CHANNELS = {'RotationPred': 64, 'RelativeLoc': 128, 'JigsawPuzzle': 256,
               'MaskedIntensityPred': 64}


def build(name, **model):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    from tests.helpers import ROOT
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(f'{ROOT}/{CONFIGS[name]}').model
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.head.loss.in_channels = IN_CHANNELS[name]
    if name == 'JigsawPuzzle':
        cfg.num_permutations = cfg.head.loss.num_classes = 8
    cfg.update(model)
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    m.init_weights()
    return m


def shapes(n=16, seed=0):
    """Fashion-like structured images: a bright asymmetric 'L' at a random
    place on a dark background, plus noise (uint8, 1x28x28)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 40
    for i in range(n):
        r, c = torch.randint(2, 12, (2, ), generator=g).tolist()
        x[i, 0, r:r + 14, c:c + 4] = 230
        x[i, 0, r + 10:r + 14, c:c + 12] = 230
    return x.to(torch.uint8)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_loss_runs_through_the_data_preprocessor(name):
    from mmpretrain.structures import DataSample
    model = build(name)
    x = shapes(4)
    data = model.data_preprocessor(dict(
        inputs=list(x), data_samples=[DataSample() for _ in range(4)]), True)
    out = model(**data, mode='loss')
    assert set(out) == {'loss', 'pretext_acc'}
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    # embed: the normalised pooled features of the whole image (for kNN)
    emb = model.embed(data['inputs'])
    assert emb.shape == (4, 64)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4))


def test_rotation_loss_is_the_module_maths():
    from mm_instdisc.modules.pretext import rotations
    model = build('RotationPred').eval()  # BN in eval: same maths twice
    x = torch.randn(3, 1, 28, 28)
    torch.manual_seed(0)
    got = model.loss([x], None)['loss']
    imgs, labels = rotations(x)
    feats = model.backbone(imgs)[-1].mean((2, 3))
    ref = torch.nn.functional.cross_entropy(
        model.head.loss_module.classifier(feats), labels)
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)


def test_jigsaw_permutations_are_a_checkpointed_buffer():
    model = build('JigsawPuzzle')
    assert 'permutations' in model.state_dict()
    assert model.permutations.shape == (8, 4)
    other = build('JigsawPuzzle', permutation_seed=5)
    assert not torch.equal(model.permutations, other.permutations)
    other.load_state_dict(model.state_dict())
    assert torch.equal(model.permutations, other.permutations)


@pytest.mark.parametrize('name, steps, chance', [('RotationPred', 40, 25),
                                                 ('RelativeLoc', 60, 12.5),
                                                 ('JigsawPuzzle', 60, 12.5),
                                                 ('MaskedIntensityPred', 60,
                                                  100 / 16)])
def test_task_is_learnable_on_a_fixed_batch(name, steps, chance):
    """The pretext accuracy on a fixed batch climbs far above chance: the
    labels carry information the network can extract (a bug that shuffles
    labels against inputs would keep it at chance)."""
    torch.manual_seed(0)
    model = build(name)
    x = (shapes(16).float() - 72.94) / 90.02
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    accs = []
    for _ in range(steps):
        out = model.loss([x], None)
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
        accs.append(out['pretext_acc'].item())
    assert sum(accs[-5:]) / 5 > 2.5 * chance, accs


@pytest.mark.parametrize('grid', [
    dict(),  # the shipped 2x2 grid of 14 px quadrants
    dict(target_stride=4, min_block_patches=4),  # the first recipe's 7x7
])
def test_masked_intensity_hides_the_cells_it_scores(grid):
    """The backbone sees the hidden cells at the normalised mean (0), and
    only hidden cells enter the loss."""
    model = build('MaskedIntensityPred', **grid)
    s = model.target_stride
    seen = []
    forward = model.backbone.forward
    model.backbone.forward = lambda x: seen.append(x) or forward(x)
    x = (shapes(3).float() - 72.94) / 90.02
    torch.manual_seed(0)
    model.loss([x], None)
    torch.manual_seed(0)
    hidden = model.hidden_cells(3, 28 // s, 28 // s, x.device)
    pix = hidden.repeat_interleave(s, 1).repeat_interleave(s, 2)[:, None]
    assert 0.45 < hidden.float().mean() < 0.55
    assert torch.equal(seen[0], torch.where(pix, torch.zeros_like(x), x))
    # the loss of the same batch with every visible cell's target changed
    # is unchanged: visible cells do not count
    torch.manual_seed(0)
    model.eval()
    a = model.loss([x], None)['loss']
    loss_fn = model.head.loss_module
    feats = model.backbone(seen[0])[-1]
    target = model.downsample(model.pixels(x))
    moved = torch.where(hidden[:, None], target, 1 - target)
    assert torch.allclose(loss_fn(feats, moved, hidden), a)


def test_colorization_predicts_ab_from_lightness():
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    from tests.helpers import ROOT
    cfg = Config.fromfile(f'{ROOT}/configs/pretext/colorization_resnet50-d8_'
                          '8xb32-steplr-70e_in1k.py').model
    cfg.backbone.update(depth=18, strides=(1, 2, 1, 1),
                        dilations=(1, 1, 2, 4))
    cfg.head.loss.in_channels = 512
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    seen = []
    forward = model.backbone.forward
    model.backbone.forward = lambda x: seen.append(x) or forward(x)
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32, generator=g) * 255
    pre = model.data_preprocessor
    x = (rgb - pre.mean) / pre.std
    out = model.loss([x], None)
    assert torch.isfinite(out['loss'])
    # the network sees L (one channel, (L - 50) / 50), not the colours
    from mm_instdisc.modules.colorization import srgb_to_lab
    light = (srgb_to_lab(rgb / 255)[:, :1] - 50) / 50
    assert seen[0].shape == (2, 1, 32, 32)
    assert torch.allclose(seen[0], light, atol=1e-4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = out['loss'].item()
    for _ in range(20):
        out = model.loss([x], None)
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
    assert out['loss'].item() < 0.7 * first


@pytest.mark.parametrize('ratio', [0.0, 1.0, 1.5])
def test_masked_intensity_rejects_a_ratio_that_hides_all_or_nothing(ratio):
    with pytest.raises(ValueError, match=f'Illegal mask_ratio: {ratio}'):
        build('MaskedIntensityPred', mask_ratio=ratio)


@pytest.mark.parametrize('name, wrong', [('RotationPred', 8),
                                         ('RelativeLoc', 4),
                                         ('JigsawPuzzle', 100)])
def test_classifier_size_must_match_the_labels(name, wrong):
    from tests.helpers import ROOT
    head = Config.fromfile(f'{ROOT}/{CONFIGS[name]}').model.head
    head.loss.update(in_channels=IN_CHANNELS[name], num_classes=wrong)
    with pytest.raises(ValueError, match=f'num_classes is {wrong}, expected'):
        build(name, head=head)


def test_configs_drawing_in_the_model_seed_each_rank_differently():
    """Patch positions, permutations and hidden blocks come from the global
    RNG: each rank of a multi-GPU run must draw its own."""
    import glob

    from tests.helpers import ROOT
    for path in sorted(glob.glob(f'{ROOT}/configs/pretext/*.py')):
        cfg = Config.fromfile(path)
        if cfg.model.type in ('RelativeLoc', 'JigsawPuzzle',
                              'MaskedIntensityPred'):
            assert cfg.randomness.get('diff_rank_seed'), path
