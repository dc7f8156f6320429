"""SplitMask training: Runner, tokeniser hook, 2-process dist_train.sh,
the plain-PyTorch example and the tokeniser tool, all on tiny data."""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import (ROOT, SPLITMASK_QUICK_CONFIG, tiny_splitmask_cfg,
                           write_fashion_mnist)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def test_short_training_run_saves_tokenizer(data_root, tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_splitmask_cfg(data_root, tmp_path / 'w')
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert torch.equal(sd['target_generator.codebook'],
                       before['target_generator.codebook'])
    assert not torch.equal(sd['backbone.layers.0.attn.qkv.weight'],
                           before['backbone.layers.0.attn.qkv.weight'])
    for k, v in sd.items():
        assert torch.isfinite(v.float()).all(), k
    # tools/knn_eval.py's path: pooled encoder features of both splits
    from mm_instdisc.evaluation import (build_knn_dataloaders,
                                        extract_features, load_model)
    from mm_instdisc.modules import knn_evaluate
    model = load_model(cfg, str(tmp_path / 'w' / 'epoch_1.pth'))
    train_loader, test_loader = build_knn_dataloaders(cfg, batch_size=16)
    f_tr, y_tr = extract_features(model, train_loader, progress=False)
    f_te, y_te = extract_features(model, test_loader, progress=False)
    assert f_tr.shape == (32, 32) and f_te.shape == (16, 32)
    acc = knn_evaluate(f_tr, y_tr, f_te, y_te, ks=(5, ))
    assert 0.0 <= acc[5][1] <= 100.0


def test_tokenizer_hook_fits_kmeans_once(data_root, tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_splitmask_cfg(data_root, tmp_path / 'w',
                             **{'model.target_generator.mode': 'kmeans'})
    cfg.custom_hooks = [dict(type='SplitMaskTokenizerHook', num_images=32,
                             iters=2)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    tok = runner.model.target_generator
    assert tok.is_fitted
    sd = torch.load(tmp_path / 'w' / 'epoch_1.pth',
                    weights_only=False)['state_dict']
    assert bool(sd['target_generator.fitted'])
    assert torch.equal(sd['target_generator.codebook'], tok.codebook)
    assert sd['target_generator.codebook'].abs().sum() > 0


def run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, *args], capture_output=True,
                       text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.subprocess
def test_build_tokenizer_tool_deterministic(data_root, tmp_path):
    outs = []
    for name in ('a.pth', 'b.pth'):
        path = tmp_path / name
        args = ['tools/build_splitmask_tokenizer.py', SPLITMASK_QUICK_CONFIG,
                '--out', str(path), '--mode', 'kmeans', '--num-images', '32',
                '--iters', '2', '--cfg-options',
                f'train_dataloader.dataset.data_root={data_root}',
                'model.target_generator.vocab_size=64']
        run(args)
        outs.append(torch.load(path, weights_only=False)['state_dict'])
    assert torch.equal(outs[0]['codebook'], outs[1]['codebook'])
    assert outs[0]['codebook'].shape == (64, 16)
