"""Test helpers: tiny data in the real on-disk formats, tiny configs."""
import copy
import gzip
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack('>BBBB', 0, 0, 0x08, arr.ndim) + b''.join(
        struct.pack('>I', d) for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.tobytes())


def write_fashion_mnist(root, n_train=64, n_test=32, seed=0):
    """Tiny Fashion-MNIST in the standard gzip IDX format.

    Images carry a class-dependent pattern, so a network can tell classes
    apart.
    """
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (('train', n_train), ('t10k', n_test)):
        labels = np.arange(n) % 10
        imgs = rng.integers(0, 60, size=(n, 28, 28))
        for i, y in enumerate(labels):
            imgs[i, 2 * y:2 * y + 8, 4:24] += 180
        write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte.gz'), imgs)
        write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte.gz'), labels)
    return root


FMNIST_CONFIG = os.path.join(
    ROOT, 'configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py')


def tiny_npid_cfg(data_root, work_dir, n_train=64, epochs=2, batch_size=16,
                  loss_mode='nce', init='random', seed=0):
    """The Fashion-MNIST NPID config shrunk to seconds on a CPU."""
    from mmengine.config import Config
    cfg = Config.fromfile(FMNIST_CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.model.bank_size = n_train
    cfg.model.backbone.stem_channels = 8
    cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = 64
    cfg.model.feat_dim = 16
    cfg.model.neck.out_channels = 16
    cfg.model.head.num_negatives = 8
    cfg.model.head.loss_mode = loss_mode
    tiny_fmnist_runtime(cfg, data_root, epochs, batch_size, seed)
    cfg.custom_hooks = [
        dict(type='RandomStateHook'),
        dict(type='MemoryBankHook', init=init, log_interval=1)
    ]
    return cfg


def tiny_fmnist_runtime(cfg, data_root, epochs, batch_size, seed=0):
    """Data, kNN validation (k=5) every epoch, no lr schedule, a checkpoint
    per epoch and quiet logs: the runtime of the tiny training tests."""
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(data_root)
    cfg.train_dataloader.batch_size = batch_size
    cfg.val_dataloader.batch_size = 16
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.val_evaluator = dict(type='KNNMetric', ks=(5, ), temperature=0.07)
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                         val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    return cfg


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def spawn_gloo(fn, nprocs, *args):
    """``mp.spawn(fn, args=(nprocs, port, *args), nprocs=nprocs)`` on a
    free port; a port taken between picking and binding (tests run beside
    other jobs) is retried once with a new one."""
    import torch.multiprocessing as mp
    for attempt in range(2):
        try:
            mp.spawn(fn, args=(nprocs, free_port(), *args), nprocs=nprocs)
            return
        except mp.ProcessRaisedException as e:
            if attempt or 'address already in use' not in str(e).lower():
                raise


def run_dist_train(config, work_dir, opts, nproc=2, timeout=600):
    """`bash tools/dist_train.sh CONFIG NPROC --work-dir W --cfg-options ...`
    on CPU (gloo), one thread per process; asserts success.

    A free port can be taken by another process between picking and
    binding it (tests run beside other jobs): that one failure is retried
    once with a new port.
    """
    import subprocess
    import sys
    for attempt in range(2):
        env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable,
                   OMP_NUM_THREADS='1')
        r = subprocess.run(
            ['bash', os.path.join(ROOT, 'tools/dist_train.sh'), str(config),
             str(nproc), '--work-dir', str(work_dir), '--cfg-options',
             *opts], env=env, capture_output=True, text=True,
            timeout=timeout)
        if r.returncode == 0 or 'address already in use' not in (
                r.stdout + r.stderr).lower():
            break
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r
