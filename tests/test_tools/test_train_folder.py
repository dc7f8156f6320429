"""``mm-instdisc-train METHOD --data DIR``: a folder of mixed images
trains, checkpoints, resumes exactly, writes the monitoring plot, and a
changed folder is refused on resume; every method's folder config builds
and takes a training step."""
import os
import shutil
import sys

import pytest
import torch

from tests.test_datasets.test_image_folder import write_mixed_folder


def _train(*argv):
    from mm_instdisc.cli import train_folder
    saved = list(sys.argv)
    try:
        return train_folder(list(argv))
    finally:
        sys.argv = saved


def _folder(root):
    """32 images: RGB JPEGs and grey / 16-bit / RGBA PNGs, mixed sizes."""
    for s in range(4):
        write_mixed_folder(os.path.join(root, f'part{s}'), seed=s)
    return str(root)


ARGS = ['--epochs', '2', '--size', '32', '--batch-size', '8',
        '--workers', '0']


def _weights(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return ckpt['state_dict']


def test_npid_on_a_folder_trains_resumes_exactly_and_plots(tmp_path):
    data = _folder(tmp_path / 'imgs')
    full = tmp_path / 'full'
    cfg_path = _train('npid', '--data', data, '--work-dir', str(full), *ARGS)
    assert os.path.isfile(cfg_path)
    for name in ('epoch_1.pth', 'epoch_2.pth', 'label_free_monitor.png',
                 'label_free_monitor.json'):
        assert (full / name).is_file(), name
    state = _weights(full / 'epoch_2.pth')
    assert state['memory_bank.bank'].shape == (32, 128)  # from the data
    # killed after epoch 1, resumed: the same final checkpoint
    killed = tmp_path / 'killed'
    killed.mkdir()
    shutil.copy(full / 'epoch_1.pth', killed)
    (killed / 'last_checkpoint').write_text(str(killed / 'epoch_1.pth'))
    _train('npid', '--data', data, '--work-dir', str(killed), '--resume',
           *ARGS)
    resumed = _weights(killed / 'epoch_2.pth')
    assert state.keys() == resumed.keys()
    for k in state:  # exactly (log_z is NaN until NCE estimates it)
        torch.testing.assert_close(resumed[k], state[k], rtol=0, atol=0,
                                   equal_nan=True, msg=k)
    # the folder changed since the checkpoint: resume refuses, and says why
    write_mixed_folder(os.path.join(data, 'added'), seed=9)
    shutil.copy(full / 'epoch_1.pth', killed)
    (killed / 'last_checkpoint').write_text(str(killed / 'epoch_1.pth'))
    with pytest.raises(ValueError, match='bank has 32 rows .* now has 40 '
                       'images'):
        _train('npid', '--data', data, '--work-dir', str(killed),
               '--resume', *ARGS)


def test_bad_folder_arguments_are_named(tmp_path):
    with pytest.raises(SystemExit, match='is not a folder'):
        _train('npid', '--data', str(tmp_path / 'missing'))
    (tmp_path / 'few').mkdir()
    write_mixed_folder(tmp_path / 'few')
    with pytest.raises(ValueError, match='fewer than one batch of 64'):
        _train('rotation', '--data', str(tmp_path / 'few'), '--batch-size',
               '64', '--dry-run')
    with pytest.raises(ValueError, match='multiple of 32'):
        _train('rotation', '--data', str(tmp_path / 'few'), '--size', '40',
               '--batch-size', '4', '--dry-run')


@pytest.mark.parametrize('method', [
    'npid', 'mocov2', 'adco', 'exemplar', 'splitmask', 'rotation',
    'relative-loc', 'jigsaw', 'colorization', 'masked-intensity'])
def test_every_folder_config_builds_and_steps(tmp_path, method):
    """Each method's folder config, filled in from a folder (one
    sub-folder per class for Exemplar), builds through mmengine's Runner
    and takes one training step with a finite loss."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mm_instdisc.own_data import write_folder_config
    data = tmp_path / 'imgs'
    for cls in ('a', 'b'):
        write_mixed_folder(data / cls, seed=ord(cls))
    cfg = Config.fromfile(write_folder_config(
        method, str(data), str(tmp_path / 'w'), size=64, batch_size=8))
    cfg.work_dir = str(tmp_path / 'w')
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h.type != 'LabelFreeMonitorHook']
    cfg.optim_wrapper.pop('dtype', None)
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('channels_last', None)
    cfg.optim_wrapper.pop('attention_backend', None)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    if hasattr(model, 'resize_bank'):
        model.resize_bank(len(runner.train_dataloader.dataset))
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    batch = next(iter(runner.train_dataloader))
    model.train()
    log = model.train_step(batch, optim)
    assert torch.isfinite(log['loss']), (method, log)
    expected = {'colorization': 3, 'masked-intensity': 1}.get(method, 3)
    assert runner.train_dataloader.dataset.channels == expected


def test_train_tool_minutes_fits_a_recipe_to_a_budget():
    """``tools/train.py CONFIG --minutes M`` (``mm_instdisc.apis.train``):
    the 15-minute recipe's warm-up + cosine becomes the budgeted loop's (no
    training here; the loop itself is tested in
    tests/test_engine/test_time_budget_loop.py)."""
    from mmengine.config import Config

    from mm_instdisc.apis.train import merge_args, parse_args
    from tests.helpers import ROOT
    config = os.path.join(
        ROOT, 'configs/npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_'
        'fashion-mnist.py')
    args = parse_args([config, '--minutes', '15', '--work-dir', 'unused'])
    cfg = merge_args(Config.fromfile(config), args)
    assert cfg.train_cfg.type == 'TimeBudgetTrainLoop'
    assert cfg.train_cfg.minutes == 15 and cfg.param_scheduler is None
    assert cfg.train_cfg.warmup_iters == 200  # the recipe's warm-up


def test_init_loads_torchvision_weights_into_a_matching_backbone(tmp_path):
    """--init FILE with torchvision's ResNet-18 (width 64): the folder
    config's backbone (width 32) takes the file's architecture, the neck
    follows its width, and the weights arrive (conv1, a BN's statistics)."""
    import torchvision
    from mmengine.config import Config
    from mmengine.runner import Runner
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    tv.bn1.running_mean.uniform_()
    torch.save(tv.state_dict(), tmp_path / 'tv.pth')
    data = _folder(tmp_path / 'imgs')
    path = _train('npid', '--data', data, '--work-dir', str(tmp_path / 'w'),
                  '--init', str(tmp_path / 'tv.pth'), '--dry-run', *ARGS)
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.base_channels == 64
    assert cfg.model.neck.in_channels == 512
    cfg.work_dir = str(tmp_path / 'w')
    cfg.custom_hooks = []
    model = Runner.from_cfg(cfg).model
    model.init_weights()
    assert torch.equal(model.backbone.conv1.weight, tv.conv1.weight)
    assert torch.equal(model.backbone.bn1.running_mean, tv.bn1.running_mean)
    # a grey folder cannot take RGB weights: said before training
    with pytest.raises(ValueError, match='3-channel images.*gives 1'):
        _train('npid', '--data', data, '--work-dir', str(tmp_path / 'w1'),
               '--init', str(tmp_path / 'tv.pth'), '--channels', '1',
               '--dry-run', *ARGS)


def test_sharded_bank_is_sized_from_the_data(tmp_path):
    """bank_size=None with a ShardedMemoryBank: MemoryBankHook.before_run
    gives it one row per training image (one process here; the 2-process
    sharded runs are in tests/test_faults/test_distributed.py)."""
    from types import SimpleNamespace

    from mmengine.registry import init_default_scope

    from mm_instdisc.engine.hooks import MemoryBankHook
    from mm_instdisc.models.selfsup.npid import NPID
    init_default_scope('mmpretrain')
    net = NPID(backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1,
                             base_channels=8, stem_channels=8),
               neck=dict(type='LinearNeck', in_channels=64, out_channels=16,
                         gap_dim=2, norm_cfg=None),
               head=dict(type='LossHead',
                         loss=dict(type='NPIDLoss', mode='softmax')),
               bank_size=None, feat_dim=16,
               bank=dict(type='ShardedMemoryBank', dtype='bfloat16'))
    assert net.bank_from_data and net.memory_bank.length == 1
    runner = SimpleNamespace(
        model=net, train_dataloader=SimpleNamespace(dataset=range(37)),
        logger=SimpleNamespace(info=lambda msg: None))
    MemoryBankHook().before_run(runner)
    bank = net.memory_bank
    assert type(bank).__name__ == 'ShardedMemoryBank'
    assert bank.length == 37 and bank.bank.shape == (37, 16)
    assert bank.bank.dtype == torch.bfloat16
    assert net._ddp_params_and_buffers_to_ignore == [
        f'memory_bank.{n}' for n, _ in bank.named_buffers()]
    with pytest.raises(ValueError, match="Illegal bank_size: 'all'"):
        NPID(backbone=dict(type='ResNet_CIFAR', depth=18), neck=dict(
            type='LinearNeck', in_channels=512, out_channels=16),
             head=dict(type='LossHead', loss=dict(type='NPIDLoss')),
             bank_size='all')
