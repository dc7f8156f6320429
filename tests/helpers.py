"""Test helpers: tiny data in the real on-disk formats, tiny configs and
models, and the builders the test modules share.

This is the only code test modules share: none imports another test module
(or a conftest). Heavy packages (torch, mmengine, mmpretrain, mm_instdisc)
are imported inside the functions, since every test imports this module.
"""
import contextlib
import copy
import gzip
import importlib
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def benchmark_script(name):
    """Import ``benchmarks/<name>.py`` as a module (for the duration
    of the ``with``, the folder is on ``sys.path``)."""
    folder = os.path.join(ROOT, 'benchmarks')
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)


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


def write_in21k(root, classes=('n00004475', 'n00005787', 'n00006024'),
                per_class=4):
    """Tiny random JPEGs in mmpretrain's ImageNet21k layout
    (train/<class>/*.JPEG, meta/train.txt); returns the number of images."""
    from PIL import Image
    rng = np.random.default_rng(0)
    lines = []
    for label, wnid in enumerate(classes):
        os.makedirs(os.path.join(root, 'train', wnid))
        for i in range(per_class):
            name = f'{wnid}/{wnid}_{i}.JPEG'
            img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(img).save(os.path.join(root, 'train', name),
                                      format='JPEG')
            lines.append(f'{name} {label}')
    os.makedirs(os.path.join(root, 'meta'))
    with open(os.path.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return len(lines)


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
    cfg.model.head.loss.num_negatives = 8
    cfg.model.head.loss.mode = loss_mode
    tiny_fmnist_runtime(cfg, data_root, epochs, batch_size, seed)
    # RandomStateHook comes from default_runtime's default_hooks
    cfg.custom_hooks = [
        dict(type='MemoryBankHook', init=init, log_interval=1),
        dict(type='KNNReferenceHook')
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


def _gloo_entry(rank, fn, *args):
    """A spawned worker: ``fn(rank, *args)``, then leave at once. With the
    worker's gloo group destroyed, interpreter teardown still aborted a
    worker now and then ('terminate called without an active exception',
    SIGABRT after its results were saved); ``os._exit`` skips it. An
    exception in ``fn`` reaches ``mp.spawn`` as before."""
    fn(rank, *args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn_gloo(fn, nprocs, *args):
    """``mp.spawn(fn, args=(nprocs, port, *args), nprocs=nprocs)`` on a
    free port; a port taken between picking and binding (tests run beside
    other jobs) is retried once with a new one."""
    import torch.multiprocessing as mp
    for attempt in range(2):
        try:
            mp.spawn(_gloo_entry, args=(fn, nprocs, free_port(), *args),
                     nprocs=nprocs)
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


def run_dist_jobs(jobs, nproc=2, timeout=600):
    """Several tools/train.py runs in one ``torch.distributed.run`` launch
    of ``tests/dist_jobs.py`` (``nproc`` CPU processes, gloo, one thread
    each): ``jobs`` is a list of argument lists for tools/train.py. Returns
    the CompletedProcess, not asserted: the tests that read a job's output
    assert success and print the tail of the log. A port taken between
    picking and binding it is retried once with a new one."""
    import json
    import subprocess
    import sys
    import tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump([[str(a) for a in job] for job in jobs], f)
    try:
        for attempt in range(2):
            env = dict(os.environ, OMP_NUM_THREADS='1')
            r = subprocess.run(
                [sys.executable, '-m', 'torch.distributed.run',
                 '--nnodes=1', f'--nproc_per_node={nproc}',
                 '--master_addr=127.0.0.1', f'--master_port={free_port()}',
                 os.path.join(ROOT, 'tests', 'dist_jobs.py'), f.name],
                env=env, capture_output=True, text=True, timeout=timeout)
            if r.returncode == 0 or 'address already in use' not in (
                    r.stdout + r.stderr).lower():
                break
    finally:
        os.remove(f.name)
    return r


def assert_ran(r):
    """Assert a CompletedProcess (or ``completed()``'s dict) succeeded,
    showing the tail of its log."""
    if isinstance(r, dict):
        r = __import__('types').SimpleNamespace(**r)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def completed(r):
    """A CompletedProcess as a JSON-able dict (for ``shared_result``)."""
    return dict(returncode=r.returncode, stdout=r.stdout, stderr=r.stderr)


def shared_result(tmp_path_factory, name, compute):
    """``compute(folder)`` once per test session, whichever pytest-xdist
    worker asks first; the others wait for it and reuse its folder and its
    (JSON-able) result. For an expensive fixture whose tests may run on
    several workers: a module-scoped fixture would run once per worker.
    Returns ``(folder, result)``."""
    import fcntl
    import json
    import pathlib
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent  # shared by the workers of this session
    folder = pathlib.Path(root) / f'shared_{name}'
    folder.mkdir(exist_ok=True)
    done = folder / 'result.json'
    with open(folder / '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                result = compute(folder)
                done.write_text(json.dumps(result))
            return folder, json.loads(done.read_text())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_tool(path, *args):
    """``python PATH ARGS`` (PATH relative to the checkout) in this process:
    the tool's own code through ``runpy`` with its ``sys.argv``, stdout and
    stderr captured, its exit status from ``SystemExit`` (a message exit is
    status 1 with the message on stderr, as the interpreter does; an
    uncaught exception, status 1 with its traceback on stderr). Returns
    a CompletedProcess-like namespace, not asserted. Spares a process start
    and the imports (about 5 s); one test per tool still runs it in a real
    process."""
    import contextlib
    import io
    import runpy
    import traceback
    import types

    import torch
    path = os.path.join(ROOT, path)
    out, err = io.StringIO(), io.StringIO()
    argv, sys_path = sys.argv, list(sys.path)
    grad, threads = torch.is_grad_enabled(), torch.get_num_threads()
    sys.argv = [path, *map(str, args)]
    sys.path.insert(0, os.path.dirname(path))
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(path, run_name='__main__')
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                    code = 1
                else:
                    code = e.code or 0
            except Exception:  # an uncaught error: traceback, status 1
                traceback.print_exc()
                code = 1
    finally:  # what a tool may set for its whole process
        sys.argv, sys.path[:] = argv, sys_path
        torch.set_grad_enabled(grad)
        torch.set_num_threads(threads)
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(),
                                 stderr=err.getvalue())


CONVERTER = 'tools/model_converters/selfsup_to_backbone.py'


def run_converter_tool(*args, in_process=True):
    """`python tools/model_converters/selfsup_to_backbone.py ARGS`: in this
    process (``run_tool``), or with ``in_process=False`` in a child process
    from the repository root, one thread; the result is not asserted."""
    if in_process:
        return run_tool(CONVERTER, *args)
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)


class LossRecorder:
    """``.losses``: (iteration, loss) of every train iteration of the
    runner ``.hook`` is registered with."""

    def __init__(self):
        from mmengine.hooks import Hook

        rec = self

        class _Hook(Hook):
            priority = 'LOW'

            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                rec.losses.append((runner.iter, float(outputs['loss'])))

        self.losses = []
        self.hook = _Hook()


def unit_f32(*shape, seed, dim=-1):
    """Unit rows (or columns with ``dim=0``), float32."""
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=dim)


# ------------------------------------------------------------------ NPID
def build_tiny_npid(bank_size=32, loss_mode='nce'):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')  # an earlier test may leave mmdet's
    cfg = Config.fromfile(FMNIST_CONFIG).model
    cfg.bank_size = bank_size
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels = 64
    cfg.head.loss.num_negatives = 8
    cfg.head.loss.mode = loss_mode
    return MODELS.build(cfg)


def npid_batch(idx, with_idx=True):
    import torch
    from mmpretrain.structures import DataSample
    samples = []
    for i in idx:
        ds = DataSample().set_gt_label(i % 10)
        if with_idx:
            ds.set_metainfo(dict(sample_idx=i))
        samples.append(ds)
    return dict(inputs=[torch.randint(0, 255, (len(idx), 1, 28, 28),
                                      dtype=torch.uint8)],
                data_samples=samples)


PARAMETRIC_CONFIG = os.path.join(
    ROOT, 'configs/npid/parametric-softmax_resnet18-w16_1xb128-steplr-10e_'
    'fashion-mnist.py')

# ------------------------------------------------------------------ AdCo
ADCO_FMNIST_CONFIG = os.path.join(
    ROOT, 'configs/adco/adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py')


def build_tiny_adco(num_negatives=24, feat_dim=16, **overrides):
    """The Fashion-MNIST AdCo model at width 8, D=16."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')  # an earlier test may leave mmdet's
    cfg = Config.fromfile(ADCO_FMNIST_CONFIG).model
    cfg.num_negatives = num_negatives
    cfg.feat_dim = feat_dim
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels = cfg.neck.hid_channels = 64
    cfg.neck.out_channels = feat_dim
    cfg.update(overrides)
    return MODELS.build(cfg)


def adco_views(batch_size=4, sizes=(28, 28), seed=0):
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 255, (batch_size, 1, s, s), generator=g,
                            dtype=torch.uint8) for s in sizes]
    return dict(inputs=inputs,
                data_samples=[DataSample() for _ in range(batch_size)])


def tiny_two_view_cfg(config, data_root, work_dir, epochs, batch_size, seed):
    """A two-view Fashion-MNIST config (AdCo, Exemplar) shrunk to seconds
    on a CPU: width 8, D=16, cosine lr, a checkpoint and a log line per
    epoch / iteration."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.work_dir = str(work_dir)
    m = cfg.model
    m.feat_dim = 16
    m.backbone.stem_channels = m.backbone.base_channels = 8
    m.neck.in_channels = m.neck.hid_channels = 64
    m.neck.out_channels = 16
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.test_dataloader.dataset.data_root = str(data_root)
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, begin=0,
             end=epochs)
    ]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    return cfg


def tiny_adco_cfg(data_root, work_dir, epochs=2, batch_size=16,
                  num_negatives=40, seed=0, config=ADCO_FMNIST_CONFIG):
    """The Fashion-MNIST AdCo config shrunk to seconds on a CPU (64 images,
    4 iterations per epoch, D=16)."""
    cfg = tiny_two_view_cfg(config, data_root, work_dir, epochs, batch_size,
                            seed)
    cfg.model.num_negatives = num_negatives
    cfg.custom_hooks = [dict(type='AdCoNegativesInitHook', log_interval=1)]
    return cfg


# -------------------------------------------------------------- Exemplar
EXEMPLAR_FMNIST_CONFIG = os.path.join(
    ROOT, 'configs/exemplar/'
    'exemplar-v2_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py')
EXEMPLAR_V1_FMNIST_CONFIG = os.path.join(
    ROOT, 'configs/exemplar/'
    'exemplar-v1_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py')


def build_tiny_exemplar(queue_len=24, feat_dim=16,
                        config=EXEMPLAR_FMNIST_CONFIG, **overrides):
    """The Fashion-MNIST Exemplar model at width 8, D=16."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')  # an earlier test may leave mmdet's
    cfg = Config.fromfile(config).model
    cfg.queue_len = queue_len
    cfg.feat_dim = feat_dim
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels = 64
    if 'hid_channels' in cfg.neck:
        cfg.neck.hid_channels = 64
    cfg.neck.out_channels = feat_dim
    cfg.update(overrides)
    return MODELS.build(cfg)


def exemplar_views(labels, seed=0, num_views=2, with_labels=True):
    """A fake two-view batch; ``labels`` one per image."""
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    b = len(labels)
    inputs = [torch.randint(0, 255, (b, 1, 28, 28), generator=g,
                            dtype=torch.uint8) for _ in range(num_views)]
    samples = []
    for y in labels:
        ds = DataSample()
        if with_labels:
            ds.set_gt_label(y)
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def tiny_exemplar_cfg(data_root, work_dir, epochs=2, batch_size=16,
                      queue_len=40, seed=0, config=EXEMPLAR_FMNIST_CONFIG):
    """The Fashion-MNIST Exemplar config shrunk to seconds on a CPU (64
    images, 4 iterations per epoch, D=16)."""
    cfg = tiny_two_view_cfg(config, data_root, work_dir, epochs, batch_size,
                            seed)
    cfg.model.queue_len = queue_len
    return cfg


# ------------------------------------------------------------- SplitMask
SPLITMASK_QUICK_CONFIG = os.path.join(
    ROOT, 'configs/splitmask/'
    'splitmask_vit-w128d4-p4_1xb64-coslr-2e_fashion-mnist-10k.py')

# shrink the quick config to seconds (also used as --cfg-options)
SPLITMASK_TINY_OPTS = {
    'train_dataloader.dataset.indices': 32,
    'train_dataloader.batch_size': 8,
    'test_dataloader.dataset.indices': 16,
    'model.backbone.arch.embed_dims': 32,
    'model.backbone.arch.num_layers': 2,
    'model.backbone.arch.num_heads': 2,
    'model.backbone.arch.feedforward_channels': 64,
    'model.neck.embed_dims': 32,
    'model.neck.num_heads': 2,
    'model.head.loss.embed_dims': 32,
    'model.head.loss.vocab_size': 64,
    'model.target_generator.vocab_size': 64,
    'train_cfg.max_epochs': 1,
}


def tiny_splitmask_cfg(data_root, work_dir, **extra):
    from mmengine.config import Config
    cfg = Config.fromfile(SPLITMASK_QUICK_CONFIG)
    opts = dict(SPLITMASK_TINY_OPTS)
    opts.update({'train_dataloader.dataset.data_root': str(data_root),
                 'test_dataloader.dataset.data_root': str(data_root)})
    opts.update(extra)
    cfg.merge_from_dict(opts)
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 1
    return cfg


# -------------------------------------- self-supervised models to transfer
FMNIST_LINEAR_CONFIG = os.path.join(
    ROOT, 'configs/benchmarks/classification/fashion_mnist/'
    'resnet18-w16_1xb128-linear-coslr-10e_fashion-mnist.py')
NPID_MODEL_CONFIG = os.path.join(
    ROOT, 'configs/_base_/models/npid_resnet18-w16_fashion-mnist.py')
SPLITMASK_MODEL_CONFIG = os.path.join(
    ROOT, 'configs/_base_/models/splitmask_vit-w128d4-p4_fashion-mnist.py')
# a tiny ViT for the SplitMask transfer tests (the configs' is 128 x 4)
TINY_VIT_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                     feedforward_channels=64)


def build_npid(bank_size: int = 64, **backbone):
    """The CPU NPID model (ResNet_CIFAR width 16 unless overridden)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(NPID_MODEL_CONFIG)
    cfg.model.bank_size = bank_size
    cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # make the weights (and the bank) distinct from a fresh init; BN running
    # statistics stay plausible (mean ~0, var ~1) for the detector's eval
    _perturb(model)
    return model


def _perturb(model):
    """Make the float weights distinct from a fresh init (and each other)."""
    import torch
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)


def build_splitmask(vocab_size: int = 64):
    """The CPU SplitMask model of the Fashion-MNIST config, with a tiny ViT.

    SplitMaskViT on 1x32x32 images with 4x4 patches, layer scale 0.1 and
    out_type 'raw' as configured, but ``TINY_VIT_ARCH`` wide and deep (the
    decoder, head and tokeniser shrunk to match).
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(SPLITMASK_MODEL_CONFIG)
    dims, heads = TINY_VIT_ARCH['embed_dims'], TINY_VIT_ARCH['num_heads']
    cfg.model.backbone.arch = dict(TINY_VIT_ARCH)
    cfg.model.neck.update(embed_dims=dims, num_heads=heads)
    cfg.model.head.loss.update(embed_dims=dims, vocab_size=vocab_size)
    cfg.model.target_generator.vocab_size = vocab_size
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    _perturb(model)
    return model


SPLITMASK_FOLDER_CONFIG = os.path.join(
    ROOT, 'configs/splitmask/'
    'splitmask_vit-w64d4-p8_1xb128-bf16-coslr-100e_custom.py')


def save_splitmask_folder_checkpoint(path, img_size: int = 32,
                                     patch_size: int = 8):
    """A tiny SplitMask of the folder config (``mm-instdisc-train
    splitmask``): ``TINY_VIT_ARCH`` (32 wide, 2 layers, 2 heads) on RGB
    ``img_size`` px images with ``patch_size`` px patches, saved as
    mmengine's Runner saves it (``meta['cfg']``: the config's text, which
    gives the heads). Returns (model, path)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(SPLITMASK_FOLDER_CONFIG)
    grid, dims = img_size // patch_size, TINY_VIT_ARCH['embed_dims']
    cfg.model.backbone.update(arch=dict(TINY_VIT_ARCH), img_size=img_size,
                              patch_size=patch_size)
    cfg.model.neck.update(embed_dims=dims, patch_resolution=grid,
                          num_heads=TINY_VIT_ARCH['num_heads'])
    cfg.model.head.loss.update(embed_dims=dims, vocab_size=64)
    cfg.model.target_generator.update(vocab_size=64, patch_size=patch_size)
    cfg.model.data_preprocessor.augment.crop_size = img_size
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    _perturb(model)
    torch.save(
        dict(meta=dict(epoch=1, iter=10, mmengine_version='0.10.7',
                       cfg=cfg.pretty_text),
             state_dict=model.state_dict(), message_hub=dict(log_scalars={}),
             optimizer=dict(state={}, param_groups=[dict(lr=1e-3)])),
        path)
    return model, str(path)


def save_selfsup_checkpoint(model, path) -> str:
    """Saved like mmengine's CheckpointHook: meta, state_dict, optimizer."""
    import torch
    torch.save(
        dict(meta=dict(epoch=3, iter=30, mmengine_version='0.10.7'),
             state_dict=model.state_dict(),
             message_hub=dict(log_scalars={}),
             optimizer=dict(state={}, param_groups=[dict(lr=0.03)])),
        path)
    return str(path)
