"""benchmarks/pretext_sweep.py replays the pretext recipes in plain
PyTorch on a GPU machine without OpenMMLab; its ranking is only worth
something if it trains what the shipped configs train. Checked here: the
replay's network is the recipes' backbone (same parameters, same outputs),
and, with the same weights and random state, each task's replay loss equals
the registered algorithm's loss built from the shipped config."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from tests.helpers import ROOT, benchmark_script

CONFIGS = {
    'rotation': 'rotation-pred',
    'relloc': 'relative-loc',
    'jigsaw': 'jigsaw',
    'maskint': 'masked-intensity',
}


def shipped(task):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        f'{ROOT}/configs/pretext/{CONFIGS[task]}_resnet18-w32s2_1xb256-bf16-'
        'cos-15min_fashion-mnist.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def replay_settings(cfg):
    """The sweep's setting that the shipped config is (the task's own)."""
    m = cfg.model
    if m.type == 'RotationPred':
        return dict(task='rotation')
    if m.type == 'RelativeLoc':
        return dict(task='relloc', patch=m.patch, gap=m.gap, jitter=m.jitter,
                    resize=m.patch_resize)
    if m.type == 'JigsawPuzzle':
        return dict(task='jigsaw', grid=m.grid, tile=m.tile,
                    perms=m.num_permutations, resize=m.get('tile_resize'))
    return dict(task='maskint', ratio=m.mask_ratio,
                min_block=m.min_block_patches, stride=m.target_stride,
                bins=m.head.loss.num_bins)


def test_replay_backbone_is_the_recipes_backbone():
    with benchmark_script('pretext_sweep') as sweep:
        net = sweep.backbone()
    model, _ = shipped('rotation')
    ours = list(net.state_dict().values())
    theirs = list(model.backbone.state_dict().values())
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    net.load_state_dict(dict(zip(net.state_dict(), theirs)))
    net.eval(), model.eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        ref = model.neck(model.backbone(x))[0].flatten(1)
        assert torch.allclose(net(x), ref, atol=1e-5)


@pytest.mark.parametrize('task', sorted(CONFIGS))
def test_replay_loss_equals_the_shipped_algorithm(task):
    model, cfg = shipped(task)
    with benchmark_script('pretext_sweep') as sweep:
        recipe = sweep.setting(sweep.RECIPES[task])
        net = sweep.backbone()
        replay = sweep.Task(recipe, torch.device('cpu'))
    # the sweep's setting of this recipe is the shipped config
    for key, value in replay_settings(cfg).items():
        assert recipe[key] == value, key
    assert recipe['epochs'] == cfg.max_epochs
    assert recipe['lr'] == cfg.optim_wrapper.optimizer.lr
    augment = cfg.model.data_preprocessor.augment
    assert recipe['crop_min'] == augment.crop_scale[0]
    cosine = cfg.param_scheduler[-1]
    assert cosine.eta_min == pytest.approx(0.01 * recipe['lr'])
    net.load_state_dict(
        dict(zip(net.state_dict(), model.backbone.state_dict().values())))
    replay.head.load_state_dict(model.head.loss_module.state_dict())
    x = (torch.rand(6, 1, 28, 28) * 255 - 72.94) / 90.02
    torch.manual_seed(1)
    ref = model.loss([x], None)
    torch.manual_seed(1)
    loss, acc = replay.loss(net, x)
    assert loss.item() == pytest.approx(ref['loss'].item(), rel=1e-5)
    assert acc.item() == pytest.approx(ref['pretext_acc'].item())


@pytest.mark.subprocess
def test_sweeps_import_without_openmmlab():
    """The GPU machine has torch and no OpenMMLab: both sweeps and the
    replay library import with mmengine, mmcv, mmpretrain and mmdet
    blocked."""
    code = ('import sys\n'
            'for m in ("mmengine", "mmcv", "mmpretrain", "mmdet"):\n'
            '    sys.modules[m] = None\n'
            'sys.path.insert(0, "benchmarks")\n'
            'import pretext_sweep, twoview_sweep\n'
            'import benchmarks.lib.replay\n')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
