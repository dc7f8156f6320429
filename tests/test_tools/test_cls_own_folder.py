"""Classification on your own labelled folder (mm_instdisc.own_cls and
``mm-instdisc-cls-train``): the checks, the filled-in config in mmengine's
Runner, the frozen probe, a fine-tuning iteration and the stratified
fraction."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers import (TINY_VIT_ARCH, build_npid, build_splitmask,
                           save_selfsup_checkpoint,
                           save_splitmask_folder_checkpoint)

# a width-16 mmpretrain ResNet-18 with the folder configs' stem (7x7, RGB)
BACKBONE = dict(type='ResNet', depth=18, in_channels=3, stem_channels=16,
                base_channels=16, zero_init_residual=False)
CLASSES = ('ant', 'bee', 'cow')


def write_labelled(root, per_class=4, classes=CLASSES, seed=0):
    """``per_class`` 40x30 RGB PNGs per class sub-folder, each class with
    its own bright band."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        os.makedirs(osp.join(root, name), exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (30, 40, 3), dtype=np.uint8)
            img[8 * c:8 * c + 8] = 200
            Image.fromarray(img).save(osp.join(root, name, f'{i}.png'))
    return str(root)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls')
    npid = build_npid(bank_size=8, **BACKBONE)
    return dict(train=write_labelled(tmp / 'train'),
                val=write_labelled(tmp / 'val', per_class=2, seed=1),
                ckpt=save_selfsup_checkpoint(npid, tmp / 'npid.pth'),
                backbone={k: v.clone() for k, v in
                          npid.backbone.state_dict().items()})


def _cfg(data, work_dir, **kwargs):
    from mmengine.config import Config

    from mm_instdisc.own_cls import write_cls_config
    kwargs.setdefault('workers', 0)
    cfg = Config.fromfile(write_cls_config(data['train'], data['val'],
                                           data['ckpt'], str(work_dir),
                                           **kwargs))
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    # runners built in the same second would share a logger / visualizer
    cfg.experiment_name = osp.basename(str(work_dir))
    return cfg


def test_written_config_builds_and_loads_the_checkpoint(data, tmp_path):
    from mmengine.runner import Runner
    cfg = _cfg(data, tmp_path, epochs=3, seed=5)
    assert cfg.num_classes == 3 and cfg.classes == CLASSES
    assert (cfg.channels, cfg.base_channels, cfg.stem_channels) == (3, 16, 16)
    assert cfg.img_size == 32  # 30 px images: the smallest size, 32
    assert cfg.model.head.in_channels == 128  # 16 * 8, from the weights
    assert cfg.model.head.num_classes == 3
    assert cfg.model.backbone.frozen_stages == 4
    assert cfg.model.backbone.norm_eval is True
    init = cfg.model.backbone.init_cfg
    assert (init.type, init.checkpoint, init.prefix) == (
        'Pretrained', osp.abspath(data['ckpt']), 'backbone.')
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'ImageFolderDataset' and ds.with_label is True
    assert ds.data_root == osp.abspath(data['train'])
    assert cfg.val_dataloader.dataset.data_root == osp.abspath(data['val'])
    assert cfg.val_evaluator.topk == (1, )
    assert cfg.randomness.seed == 5 and cfg.train_cfg.max_epochs == 3
    # no pretraining config in the checkpoint: the training images' stats
    assert len(cfg.model.data_preprocessor.mean) == 3
    assert cfg.train_dataloader.batch_size == 2  # 12 images: a quarter -> 2
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert type(model.backbone).__name__ == 'ResNet'
    assert model.head.fc.out_features == 3
    model.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, data['backbone'][k]), k


class _Snapshot:
    """A hook keeping the model's weights right after their init."""

    def __init__(self):
        from mmengine.hooks import Hook

        outer = self

        class Keep(Hook):
            def before_train(self, runner):
                outer.state = {k: v.detach().clone() for k, v in
                               runner.model.state_dict().items()}

        self.hook = Keep()


def _losses(work_dir):
    import glob
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(logs[0]) as f:
        rows = [json.loads(line) for line in f]
    return [r['loss'] for r in rows if 'loss' in r]


@pytest.mark.parametrize('arch', ['resnet', 'vit'])
def test_probe_trains_the_head_only(data, tmp_path, request, arch):
    from mmengine.runner import Runner
    if arch == 'vit':  # SplitMask's (the fixture below)
        data = dict(data, **request.getfixturevalue('vit'))
    cfg = _cfg(data, tmp_path, epochs=1, batch_size=6)  # 2 iterations
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    snap = _Snapshot()
    runner.register_hook(snap.hook)
    runner.train()
    losses = _losses(str(tmp_path))
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    after = runner.model.state_dict()
    backbone = [k for k in after if k.startswith('backbone.')]
    assert len(backbone) == len(data['backbone'])
    for k in backbone:  # weights and BN statistics (norm_eval) unchanged
        assert torch.equal(after[k], snap.state[k]), k
        assert torch.equal(after[k], data['backbone'][k[len('backbone.'):]])
    assert not torch.equal(after['head.fc.weight'],
                           snap.state['head.fc.weight'])


@pytest.mark.slow
def test_finetune_iteration_from_the_cli_with_a_fraction(data, tmp_path):
    from mm_instdisc.cli import cls_train_cli
    work = str(tmp_path / 'work')
    path = cls_train_cli([
        '--train', data['train'], '--val', data['val'], '--checkpoint',
        data['ckpt'], '--mode', 'finetune', '--fraction', '0.5', '--epochs',
        '1', '--batch-size', '6', '--workers', '0', '--work-dir', work])
    assert path.endswith('resnet18-w32_finetune_custom.py')
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                      weights_only=False)
    # 2 images of each class: one iteration of 6 (the checkpoint's log: a
    # runner of an earlier test in the same second shares the visualizer)
    losses = ckpt['message_hub']['log_scalars']['train/loss'].data[0]
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    # validated too: the best checkpoint is kept by its accuracy
    assert osp.isfile(osp.join(work, 'best_accuracy_top1_epoch_1.pth'))
    sd = ckpt['state_dict']
    assert sd['backbone.conv1.weight'].shape == (16, 3, 7, 7)
    # the backbone started from the checkpoint and trained
    assert not torch.equal(sd['backbone.conv1.weight'],
                           data['backbone']['conv1.weight'])
    step = (sd['backbone.conv1.weight'] -
            data['backbone']['conv1.weight']).abs().max()
    assert step < 0.1  # one SGD step away, not a fresh init


class _Labels:
    """A stand-in dataset of given labels."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def get_gt_labels(self):
        return self.labels

    def __len__(self):
        return len(self.labels)


def test_fraction_is_stratified_and_seeded():
    from mm_instdisc.datasets import ClassBalancedSubset
    labels = [2] * 5 + [0] * 10 + [1] * 20
    rng = np.random.default_rng(0)
    labels = list(rng.permutation(labels))
    ds = _Labels(labels)
    sub = ClassBalancedSubset(ds, fraction=0.2, seed=3, mode='stratified')
    picked = np.asarray(labels)[sub.indices]
    # reference: max(1, round(0.2 * n_c)) of every class
    want = {c: max(1, int(round(0.2 * labels.count(c)))) for c in (0, 1, 2)}
    assert want == {0: 2, 1: 4, 2: 1}
    assert {c: int((picked == c).sum()) for c in (0, 1, 2)} == want
    assert len(set(sub.indices)) == len(sub.indices) == 7
    again = ClassBalancedSubset(ds, fraction=0.2, seed=3, mode='stratified')
    assert again.indices == sub.indices
    others = {tuple(ClassBalancedSubset(ds, fraction=0.2, seed=s,
                                        mode='stratified').indices)
              for s in range(4, 9)}
    assert len(others | {tuple(sub.indices)}) > 1  # the seed matters
    # the default stays class-balanced: round(0.2 * 35 / 3) = 2 per class
    bal = np.asarray(labels)[ClassBalancedSubset(ds, fraction=0.2).indices]
    assert sorted(np.bincount(bal)) == [2, 2, 2]
    full = ClassBalancedSubset(ds, fraction=1.0, mode='stratified')
    assert full.indices == list(range(35))


def test_fraction_in_the_config_builds_the_subset(data, tmp_path):
    from mmpretrain.registry import DATASETS

    import mm_instdisc.datasets  # noqa: F401
    from mm_instdisc.own_cls import subset_size
    cfg = _cfg(data, tmp_path, fraction=0.5, seed=2)
    ds_cfg = cfg.train_dataloader.dataset
    assert (ds_cfg.type, ds_cfg.fraction, ds_cfg.seed, ds_cfg.mode) == (
        'ClassBalancedSubset', 0.5, 2, 'stratified')
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == subset_size([4, 4, 4], 0.5) == 6
    assert sorted(np.bincount(ds.get_gt_labels())) == [2, 2, 2]


def _plain(cfg_dict):
    """A config dict as json reads it back (tuples as lists)."""
    return json.loads(json.dumps(cfg_dict, default=str))


@pytest.mark.parametrize('fraction', [None, 0.5])
def test_finetune_config_is_the_filled_probe_config_and_its_changes(
        data, tmp_path, fraction):
    """One data block: the fine-tuning config written inherits the probe's,
    filled in and written next to it, and changes only what fine-tuning
    changes (written out here on the probe's resolved config)."""
    from mmengine.config import Config

    from mm_instdisc.own_cls import write_cls_config
    args = (data['train'], data['val'], data['ckpt'])
    kwargs = dict(fraction=fraction, workers=0)
    probe = _plain(Config.fromfile(write_cls_config(
        *args, str(tmp_path / 'probe'), **kwargs)).to_dict())
    work = str(tmp_path / 'ft')
    path = write_cls_config(*args, work, mode='finetune', **kwargs)
    assert osp.basename(path) == 'resnet18-w32_finetune_custom.py'
    base = osp.join(work, 'resnet18-w32_linear-probe_custom.py')
    with open(path) as f:
        assert f'_base_ = [{base!r}]' in f.read()
    with open(base) as f:  # the data block is filled in there
        assert f"train_root = {osp.abspath(data['train'])!r}" in f.read()
    ft = _plain(Config.fromfile(path).to_dict())
    assert probe['max_epochs'] == 50 and probe['val_interval'] == 5
    want = json.loads(json.dumps(probe))
    want.update(max_epochs=100, val_interval=10)
    want['model']['backbone'].update(frozen_stages=-1, norm_eval=False)
    crop = dict(type='RandomResizedCrop', scale=probe['img_size'],
                crop_ratio_range=[0.5, 1.])
    want['train_pipeline'] = [crop] + probe['train_pipeline']
    want['train_folder']['pipeline'] = want['train_pipeline']
    want['train_dataset'] = want['train_folder'] if fraction is None else \
        dict(probe['train_dataset'], dataset=want['train_folder'])
    want['train_dataloader']['dataset'] = want['train_dataset']
    want['optim_wrapper']['optimizer'].update(lr=0.01, weight_decay=5e-4)
    want['optim_wrapper']['paramwise_cfg'] = dict(
        custom_keys=dict(head=dict(lr_mult=10)))
    want['param_scheduler'][0].update(T_max=100, end=100)
    want['train_cfg'].update(max_epochs=100, val_interval=10)
    want['default_hooks']['checkpoint']['interval'] = 10
    assert ft == want


def test_config_chain_and_a_value_without_its_line(tmp_path):
    from mm_instdisc.own_cls import (MODE_CONFIGS, VIT_MODE_CONFIGS,
                                     config_chain, write_config_chain)
    names = [[osp.basename(p) for p in config_chain(c[mode])]
             for c in (MODE_CONFIGS, VIT_MODE_CONFIGS)
             for mode in ('probe', 'finetune')]
    probe, ft = ('resnet18-w32_linear-probe_custom.py',
                 'resnet18-w32_finetune_custom.py')
    assert names == [[probe], [probe, ft],
                     [probe, 'splitmask-vit_linear-probe_custom.py'],
                     [probe, ft, 'splitmask-vit_finetune_custom.py']]
    chain = config_chain(MODE_CONFIGS['finetune'])
    with pytest.raises(KeyError, match='has a line "no_such_var = ..."'):
        write_config_chain(chain, str(tmp_path), dict(no_such_var=1))


def test_flat_folder_is_refused(data, tmp_path):
    from PIL import Image

    from mm_instdisc.own_cls import write_cls_config
    flat = tmp_path / 'flat'
    flat.mkdir()
    for i in range(4):
        Image.new('RGB', (40, 30)).save(flat / f'{i}.png')
    with pytest.raises(ValueError, match='no sub-folders: expected one '
                       'sub-folder per class'):
        write_cls_config(str(flat), data['val'], data['ckpt'],
                         str(tmp_path / 'w'))
    one = tmp_path / 'one'
    write_labelled(one, classes=('ant', ))
    with pytest.raises(ValueError, match='expected at least 2 classes'):
        write_cls_config(str(one), data['val'], data['ckpt'],
                         str(tmp_path / 'w'))


def test_other_classes_in_val_are_refused(data, tmp_path):
    from mm_instdisc.own_cls import write_cls_config
    other = write_labelled(tmp_path / 'other', per_class=1,
                           classes=('ant', 'bee', 'dog'))
    with pytest.raises(ValueError, match=r"'dog'.*expected the same names"):
        write_cls_config(data['train'], other, data['ckpt'],
                         str(tmp_path / 'w'))


def test_checkpoint_without_a_backbone_is_refused(data, tmp_path):
    from mm_instdisc.own_cls import write_cls_config

    # a ViT without its pretraining config: the heads are in no weight
    vit = save_selfsup_checkpoint(build_splitmask(), tmp_path / 'sm.pth')
    with pytest.raises(ValueError, match='VisionTransformer: 2 layers, width '
                       '32.*number of attention heads is in no weight shape'):
        write_cls_config(data['train'], data['val'], vit, str(tmp_path / 'w'))
    junk = str(tmp_path / 'junk.pth')
    torch.save(dict(state_dict={'foo.weight': torch.zeros(2)}), junk)
    with pytest.raises(ValueError, match='no backbone in it'):
        write_cls_config(data['train'], data['val'], junk,
                         str(tmp_path / 'w'))


@pytest.mark.parametrize('fraction', [0, -0.1, 1.5])
def test_fraction_outside_unit_interval_is_refused(data, tmp_path, fraction):
    from mm_instdisc.cli import cls_train_cli
    with pytest.raises(SystemExit, match=rf'Illegal fraction: {float(fraction)}; '
                       r'expected a share in \(0, 1\]'):
        cls_train_cli(['--train', data['train'], '--val', data['val'],
                       '--checkpoint', data['ckpt'], '--fraction',
                       str(fraction), '--work-dir', str(tmp_path), '--dry-run'])


def test_fraction_leaving_less_than_a_batch_is_refused(data, tmp_path):
    from mm_instdisc.own_cls import write_cls_config
    with pytest.raises(ValueError, match=r'3 training image\(s\) \(fraction '
                       r'0.01 of 12 .*fewer than one batch of 4'):
        write_cls_config(data['train'], data['val'], data['ckpt'],
                         str(tmp_path), fraction=0.01, batch_size=4)


# -- SplitMask's ViT ---------------------------------------------------------


@pytest.fixture(scope='module')
def vit(tmp_path_factory):
    """A tiny SplitMask of the folder config (32 wide, 2 layers, 2 heads,
    8 px patches, 32 px images) saved with its config."""
    tmp = tmp_path_factory.mktemp('vit')
    model, ckpt = save_splitmask_folder_checkpoint(tmp / 'splitmask.pth')
    return dict(ckpt=ckpt, backbone={k: v.clone() for k, v in
                                     model.backbone.state_dict().items()})


@pytest.mark.parametrize('mode', ['probe', 'finetune'])
def test_vit_config_builds_and_loads_the_checkpoint(data, vit, tmp_path,
                                                    mode):
    from mmengine.runner import Runner
    cfg = _cfg(dict(data, ckpt=vit['ckpt']), tmp_path, mode=mode, epochs=2)
    bb = cfg.model.backbone
    assert bb.type == 'SplitMaskViT'
    assert dict(bb.arch) == TINY_VIT_ARCH  # the heads from the config
    assert (bb.img_size, bb.patch_size, bb.in_channels, bb.out_type) == (
        32, 8, 3, 'featmap')
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    assert cfg.model.head.in_channels == 32 and cfg.model.head.num_classes == 3
    assert cfg.img_size == 32  # the pretraining size
    # the SplitMask config's normalisation, not the images'
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    init = bb.init_cfg
    assert (init.type, init.checkpoint, init.prefix) == (
        'Pretrained', osp.abspath(vit['ckpt']), 'backbone.')
    assert cfg.train_cfg.max_epochs == 2 and cfg.classes == CLASSES
    if mode == 'probe':
        assert (bb.frozen_stages, bb.drop_path_rate) == (2, 0.)
    else:
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
        assert cfg.optim_wrapper.constructor == \
            'LearningRateDecayOptimWrapperConstructor'
    model = Runner.from_cfg(cfg).model
    assert type(model.backbone).__name__ == 'SplitMaskViT'
    model.init_weights()
    sd = model.backbone.state_dict()
    assert sd.keys() == vit['backbone'].keys()
    for k, v in vit['backbone'].items():
        assert torch.equal(sd[k], v), k
    # the feature: the mean of the final-normed patch tokens (SplitMask's)
    x = torch.randn(2, 3, 32, 32)
    model.eval()  # no drop path
    with torch.no_grad():
        tokens = model.backbone.ln1(_tokens(model.backbone, x))
        feat = model.extract_feat(x)[-1]
    torch.testing.assert_close(feat, tokens[:, 1:].mean(dim=1))


def _tokens(vit, x):
    """The ViT's last layer output before the final norm, written out:
    patch embedding, class token, position embedding, the layers."""
    patches, _ = vit.patch_embed(x)
    h = torch.cat([vit.cls_token.expand(len(x), -1, -1), patches], dim=1)
    h = h + vit.pos_embed
    for layer in vit.layers:
        h = layer(h)
    return h


@pytest.mark.slow
def test_vit_finetune_iteration_from_the_cli(data, vit, tmp_path):
    from mm_instdisc.cli import cls_train_cli
    work = str(tmp_path / 'work')
    path = cls_train_cli([
        '--train', data['train'], '--val', data['val'], '--checkpoint',
        vit['ckpt'], '--mode', 'finetune', '--epochs', '1', '--batch-size',
        '12', '--workers', '0', '--work-dir', work])
    assert path.endswith('splitmask-vit_finetune_custom.py')
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                      weights_only=False)
    losses = ckpt['message_hub']['log_scalars']['train/loss'].data[0]
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    sd = ckpt['state_dict']
    # the fixed sin-cos position embeddings stay the checkpoint's; the
    # layers are one AdamW step (lr 5e-4, layer-decayed) away from it
    assert torch.equal(sd['backbone.pos_embed'], vit['backbone']['pos_embed'])
    w, w0 = (sd['backbone.layers.1.attn.qkv.weight'],
             vit['backbone']['layers.1.attn.qkv.weight'])
    assert not torch.equal(w, w0) and (w - w0).abs().max() < 1e-3


def test_vit_size_must_be_a_multiple_of_the_patch(data, vit, tmp_path):
    from mm_instdisc.own_cls import write_cls_config
    with pytest.raises(ValueError, match=r'Illegal size 36 for .*8x8 '
                       r'patches; expected a multiple of 8'):
        write_cls_config(data['train'], data['val'], vit['ckpt'],
                         str(tmp_path), size=36)
    cfg = _cfg(dict(data, ckpt=vit['ckpt']), tmp_path, size=48)
    assert cfg.img_size == 48 and cfg.model.backbone.img_size == 32
