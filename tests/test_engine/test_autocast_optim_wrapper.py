"""AutocastOptimWrapper: bf16 autocast on CPU, float32 master weights,
checkpoint / resume through a Runner, clear errors, channels_last and the
combination with AdCo's adversarial mixin."""
import copy

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def cpu_with_bf16_kernels(monkeypatch):
    """These tests check bf16 autocast itself: act as on a CPU with oneDNN's
    bf16 kernels whatever this host has (the float32 fallback on one
    without them is tested below)."""
    monkeypatch.setattr('mm_instdisc.engine.optimizers.autocast_optim_wrapper.'
                        'cpu_bf16_supported', lambda: True)


class TinyNet(nn.Module):

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def features(self, x):
        return torch.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def build(model, momentum=0.0, lr=0.1, **kwargs):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.engine  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = dict(type='AutocastOptimWrapper',
               optimizer=dict(type='SGD', lr=lr, momentum=momentum),
               **kwargs)
    return build_optim_wrapper(model, cfg)


def batch(seed=1, n=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, 8, 8, generator=g),
            torch.randint(0, 4, (n, ), generator=g))


def test_registry_build_and_bf16_context():
    from mm_instdisc.engine import AutocastOptimWrapper
    from mm_instdisc.modules import NPIDLoss
    model = TinyNet()
    wrapper = build(model)
    assert type(wrapper) is AutocastOptimWrapper
    assert (wrapper.device_type, wrapper.cast_dtype) == ('cpu', torch.bfloat16)
    assert wrapper.loss_scaler is None
    x, _ = batch()
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        conv = model.conv(x)
        feats = model.fc(model.features(x).mean((2, 3)))
        assert conv.dtype == feats.dtype == torch.bfloat16
        f = nn.functional.normalize(feats, dim=1)
        bank = nn.functional.normalize(torch.randn(32, 4), dim=1)
        loss = NPIDLoss(mode='nce', num_negatives=8)(
            f, torch.arange(len(f)), bank)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert not torch.is_autocast_enabled('cpu')


def test_update_params_keeps_float32_master_weights():
    model = TinyNet()
    wrapper = build(model)
    before = copy.deepcopy(model.state_dict())
    x, y = batch()
    with wrapper.optim_context(model):
        loss = nn.functional.cross_entropy(model(x), y)
    assert loss.dtype == torch.float32  # cross_entropy autocasts to fp32
    wrapper.update_params(loss)
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32, name
        assert p.grad is None or not p.grad.any(), name  # zeroed after step
        assert not torch.equal(p, before[name]), name


def _train(model, wrapper, steps, autocast):
    x, y = batch(n=32)
    losses = []
    for _ in range(steps):
        if autocast:
            with wrapper.optim_context(model):
                loss = nn.functional.cross_entropy(model(x), y)
        else:
            loss = nn.functional.cross_entropy(model(x), y)
        wrapper.update_params(loss)
        losses.append(float(loss.detach()))
    return losses


def test_bf16_training_tracks_fp32():
    from mmengine.optim import OptimWrapper
    init = TinyNet().state_dict()
    m16, m32 = TinyNet(), TinyNet()
    w16 = build(m16, momentum=0.9, lr=0.2)
    w32 = OptimWrapper(torch.optim.SGD(m32.parameters(), lr=0.2,
                                       momentum=0.9))
    l16 = _train(m16, w16, 60, autocast=True)
    l32 = _train(m32, w32, 60, autocast=False)
    assert l16[-1] < 0.5 * l16[0], l16
    assert abs(l16[0] - l32[0]) < 0.02 * l32[0]  # same init, same batch
    for name, p in m16.named_parameters():
        moved = (m32.state_dict()[name] - init[name]).norm()
        diff = (p.detach() - m32.state_dict()[name]).norm()
        assert p.dtype == torch.float32
        assert diff < 0.2 * moved, (name, float(diff), float(moved))


class RunnerModel:
    """Built lazily so that mmengine is imported inside the tests."""

    @staticmethod
    def make():
        from mmengine.model import BaseModel

        class Model(BaseModel):

            def __init__(self):
                super().__init__()
                self.net = TinyNet()

            def forward(self, inputs, labels=None, mode='tensor'):
                out = self.net(inputs)
                if mode == 'loss':
                    assert out.dtype == torch.bfloat16  # under autocast
                    return dict(
                        loss=nn.functional.cross_entropy(out.float(), labels))
                return out

        return Model()


class PairDataset(torch.utils.data.Dataset):

    def __init__(self):
        self.x, self.y = batch(n=8)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def _runner(work_dir, name, **kwargs):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    return Runner(
        model=RunnerModel.make(),
        work_dir=str(work_dir),
        experiment_name=name,
        default_scope='mmpretrain',
        train_dataloader=dict(
            dataset=PairDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(type='AutocastOptimWrapper',
                           optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        log_level='WARNING',
        **kwargs)


def test_runner_trains_checkpoints_and_resumes(tmp_path):
    import mm_instdisc.engine  # noqa: F401
    from mm_instdisc.engine import AutocastOptimWrapper
    runner = _runner(tmp_path, 'autocast_train')
    runner.train()
    assert type(runner.optim_wrapper) is AutocastOptimWrapper
    assert runner.iter == 2
    ckpt_path = tmp_path / 'iter_2.pth'
    saved = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    assert 'loss_scaler' not in saved['optimizer']
    momentum = {k: v['momentum_buffer']
                for k, v in saved['optimizer']['state'].items()}
    assert len(momentum) == len(list(runner.model.parameters()))

    resumed = _runner(tmp_path / 'resume', 'autocast_resume',
                      load_from=str(ckpt_path), resume=True)
    resumed.train()  # resumes at iteration 2 of 2: nothing left to run
    assert resumed.iter == 2
    state = resumed.optim_wrapper.state_dict()
    assert set(state['state']) == set(momentum)
    for k, buf in momentum.items():
        assert torch.equal(state['state'][k]['momentum_buffer'], buf)
    for (n, p), q in zip(resumed.model.named_parameters(),
                         runner.model.parameters()):
        assert p.dtype == torch.float32 and torch.equal(p, q), n


def test_state_dict_round_trip_and_fp16_checkpoint():
    model = TinyNet()
    wrapper = build(model, momentum=0.9)
    x, y = batch()
    with wrapper.optim_context(model):
        wrapper.update_params(nn.functional.cross_entropy(model(x), y))
    state = copy.deepcopy(wrapper.state_dict())
    other = build(TinyNet(), momentum=0.9)
    other.load_state_dict(state)
    assert str(other.state_dict()) == str(state)
    # a float16 run's checkpoint: its loss scaler is dropped, not an error
    other.load_state_dict(dict(state, loss_scaler={'scale': 1024.}))
    assert 'loss_scaler' not in other.state_dict()


def test_float16_on_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype='float16'.*CPU"):
        build(TinyNet(), dtype='float16')
    with pytest.raises(ValueError, match="dtype='float16'.*CPU"):
        build(TinyNet(), dtype=torch.float16, device_type='cpu')
    with pytest.raises(ValueError, match="'fp16'.*expected one of"):
        build(TinyNet(), dtype='fp16')
    with pytest.raises(ValueError, match="device_type='mps'"):
        build(TinyNet(), device_type='mps')


def test_model_on_another_device_is_a_clear_error():
    wrapper = build(TinyNet())
    with pytest.raises(RuntimeError, match="on 'meta'"):
        with wrapper.optim_context(TinyNet().to('meta')):
            pass


def test_channels_last():
    model = TinyNet()
    weight = model.conv.weight
    wrapper = build(model, momentum=0.9, channels_last=True)
    cl = torch.channels_last
    assert model.conv.weight is weight  # same Parameter, new layout
    assert weight.is_contiguous(memory_format=cl)
    x, y = batch()
    with wrapper.optim_context(model):
        assert model.conv(x).is_contiguous(memory_format=cl)
        wrapper.update_params(nn.functional.cross_entropy(model(x), y))
    state = {k: {'momentum_buffer': v['momentum_buffer'].contiguous()}
             for k, v in wrapper.state_dict()['state'].items()}
    wrapper.load_state_dict(dict(wrapper.state_dict(), state=state))
    buf = wrapper.optimizer.state[weight]['momentum_buffer']
    assert buf.is_contiguous(memory_format=cl)


def test_ascends_a_maximize_group():
    """AdCo: a param group with maximize=True ascends under this wrapper
    exactly as under the plain OptimWrapper in a manual autocast."""
    from mmengine.optim import OptimWrapper

    from mm_instdisc.engine import AutocastOptimWrapper

    def make(cls):
        torch.manual_seed(0)
        enc, neg = nn.Linear(6, 4), nn.Linear(4, 5, bias=False)
        opt = torch.optim.SGD(
            [dict(params=enc.parameters()),
             dict(params=neg.parameters(), maximize=True, lr=3.0,
                  momentum=0.9, weight_decay=1e-4)], lr=0.1, momentum=0.9)
        return nn.ModuleDict(dict(enc=enc, neg=neg)), cls(optimizer=opt)

    x = torch.randn(8, 6)
    ma, wa = make(AutocastOptimWrapper)
    mb, wb = make(OptimWrapper)
    neg0 = ma['neg'].weight.detach().clone()
    for _ in range(3):
        with wa.optim_context(ma):
            la = (ma['neg'](torch.tanh(ma['enc'](x))).float()**2).mean()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            lb = (mb['neg'](torch.tanh(mb['enc'](x))).float()**2).mean()
        assert torch.equal(la, lb)
        wa.update_params(la)
        wb.update_params(lb)
    for (n, p), q in zip(ma.named_parameters(), mb.parameters()):
        assert torch.equal(p, q), n
    # the negatives ascended: the loss grew along them
    assert (ma['neg'].weight.norm() > neg0.norm())


def test_float16_delegates_to_amp_loss_scaling(monkeypatch):
    """The CUDA float16 path, exercised on CPU: ``AmpOptimWrapper``'s
    GradScaler scales the backward, steps and is checkpointed."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    model = TinyNet()
    wrapper = build(model, dtype='float16', device_type='cuda')
    assert wrapper.cast_dtype == torch.float16
    # a real, enabled grad scaler on CPU (torch.amp supports it)
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
    x, y = batch()
    before = model.fc.weight.detach().clone()
    wrapper.update_params(nn.functional.cross_entropy(model(x), y))
    assert not torch.equal(model.fc.weight, before)
    state = copy.deepcopy(wrapper.state_dict())
    assert state['loss_scaler']['scale'] == 1024.
    # an inf gradient: the step is skipped and the scale backs off
    after = model.fc.weight.detach().clone()
    wrapper.update_params(model(x).sum() * float('inf'))
    assert torch.equal(model.fc.weight, after)
    assert wrapper.state_dict()['loss_scaler']['scale'] < 1024.
    wrapper.load_state_dict(state)
    assert wrapper.loss_scaler.get_scale() == 1024.


def _attention_backward_ops(wrapper):
    """Names of the autograd nodes of one scaled-dot-product attention run
    inside the wrapper's context."""
    model = nn.Linear(2, 2)
    q = torch.randn(2, 2, 5, 8, requires_grad=True)
    with wrapper.optim_context(model):
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    names, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            stack += [f for f, _ in node.next_functions]
    return names


def test_attention_backend_restricts_sdpa():
    from mm_instdisc.engine.optimizers import AutocastOptimWrapper
    model = nn.Linear(2, 2)

    def build(**kw):
        return AutocastOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1), **kw)

    math = _attention_backward_ops(build(attention_backend='math'))
    # the math backend decomposes attention: its backward is bmm + softmax
    assert 'BmmBackward0' in math and not any('Flash' in n for n in math)
    # without the option torch picks its fused CPU kernel
    default = _attention_backward_ops(build())
    assert 'BmmBackward0' not in default
    with pytest.raises(ValueError, match="attention_backend='fast'"):
        build(attention_backend='fast')


def test_cpu_without_bf16_kernels_trains_in_float32(monkeypatch):
    """Where bf16 convolutions would run torch's reference kernel (AVX2-only
    CPUs: 20x+ slower), the wrapper trains in float32 and says so; with
    ``cpu_bf16_fallback=False`` it autocasts anyway."""
    module = 'mm_instdisc.engine.optimizers.autocast_optim_wrapper.'
    monkeypatch.setattr(module + 'cpu_bf16_supported', lambda: False)
    logged = []
    monkeypatch.setattr(module + 'print_log', lambda msg, **kw: logged.append(msg))
    model = TinyNet()
    wrapper = build(model)
    assert wrapper.autocast is False and wrapper.cast_dtype == torch.bfloat16
    assert any('no oneDNN bfloat16 kernels' in m for m in logged), logged
    x, y = batch()
    with wrapper.optim_context(model):
        assert not torch.is_autocast_enabled('cpu')
        assert model.conv(x).dtype == torch.float32
        loss = nn.functional.cross_entropy(model(x), y)
    before = model.fc.weight.detach().clone()
    wrapper.update_params(loss)
    assert not torch.equal(model.fc.weight, before)
    forced = build(TinyNet(), cpu_bf16_fallback=False)
    assert forced.autocast is True
    with forced.optim_context(model):
        assert model.conv(x).dtype == torch.bfloat16
