"""AdCo through mmengine's Runner (hook, wrapper, checkpoint, exact resume,
config errors) and in 2-process gloo runs (identical negatives, DDP-averaged
ascent gradient)."""
import copy
import os

import pytest
import torch

from mm_instdisc.utils.dist import shutdown_distributed
from tests.helpers import (ROOT, LossRecorder, adco_views, build_tiny_adco,
                           spawn_gloo, tiny_adco_cfg, write_fashion_mnist)

NEG_KEYS = {'negatives': dict(maximize=True, lr=3.0, momentum=0.9,
                              weight_decay=1e-4)}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                               n_train=64, n_test=32)


def make_runner(cfg, *hooks):
    from mmengine.runner import Runner

    import mm_instdisc.engine  # noqa: F401
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    for h in hooks:
        runner.register_hook(h)
    return runner


class StateRecorder:
    """After each iteration (after AdCoNegativesInitHook): negatives, fill
    count, whether the optimizer has not touched them yet (no momentum
    buffer: frozen), and whether the key encoder equals the query one."""

    def __init__(self):
        from mmengine.hooks import Hook

        rec = self

        class _Hook(Hook):
            priority = 'LOW'

            def before_train(self, runner):
                rec.w0 = runner.model.negatives.weight.detach().clone()

            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                m = runner.model
                same = all(
                    torch.equal(a, b) for a, b in zip(
                        m.encoder_k.module.parameters(),
                        list(m.backbone.parameters()) +
                        list(m.neck.parameters())))
                rec.rows.append(dict(
                    weight=m.negatives.weight.detach().clone(),
                    filled=int(m.negatives.num_filled),
                    frozen=(m.negatives.weight
                            not in runner.optim_wrapper.optimizer.state),
                    key_is_query=same))

        self.rows = []
        self.hook = _Hook()


def test_train_initialises_from_keys_then_ascends(data_root, tmp_path):
    rec = StateRecorder()
    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=2)
    runner = make_runner(cfg, rec.hook)
    runner.train()
    rows = rec.rows
    assert [r['filled'] for r in rows] == [16, 32, 40, 40, 40, 40, 40, 40]
    assert [r['frozen'] for r in rows] == [True] * 3 + [False] * 5
    # frozen while filling: unfilled columns untouched, filled ones unit
    for r in rows[:3]:
        n = r['filled']
        assert torch.equal(r['weight'][:, n:], rec.w0[:, n:])
        assert torch.allclose(r['weight'].norm(dim=0), torch.ones(40),
                              atol=1e-5)
    # the key encoder was reset to the query encoder when the fill ended
    assert rows[2]['key_is_query']
    # afterwards every step moves the negatives (ascent) and keeps them sane
    for prev, cur in zip(rows[2:], rows[3:]):
        assert not torch.equal(prev['weight'], cur['weight'])
        assert torch.isfinite(cur['weight']).all()
    ckpt = torch.load(tmp_path / 'w' / 'epoch_2.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert torch.equal(sd['negatives.weight'], runner.model.negatives.weight)
    assert int(sd['negatives.num_filled']) == 40
    opt = ckpt['optimizer']
    adv_group = [g for g in opt['param_groups'] if g.get('maximize')]
    assert len(adv_group) == 1
    assert (adv_group[0]['lr'], adv_group[0]['momentum'],
            adv_group[0]['weight_decay']) == (3.0, 0.9, 1e-4)
    assert 'momentum_buffer' in opt['state'][adv_group[0]['params'][0]]
    scalars = runner.message_hub.log_scalars
    for key in ('train/adv_ce', 'train/neg_filled', 'train/adversarial_lr',
                'train/neg_norm_max'):
        assert key in scalars, key
    assert scalars['train/adversarial_lr'].current() == 3.0


def test_negatives_lr_constant_under_runner_schedulers(data_root, tmp_path):
    """Warm-up + per-iteration cosine move the encoder's lr; every optimizer
    step still uses lr 3 / momentum 0.9 / wd 1e-4 for the negatives."""
    from mmengine.hooks import Hook
    seen = []

    class StepSpy(Hook):
        def before_train(self, runner):
            opt = runner.optim_wrapper.optimizer
            inner = opt.step

            def step(*args, **kwargs):
                seen.append([(g['lr'], g['momentum'], g['weight_decay'],
                              g.get('maximize', False))
                             for g in opt.param_groups])
                return inner(*args, **kwargs)

            opt.step = step

    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=2, num_negatives=16)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=3),
        dict(type='CosineAnnealingLR', T_max=8, by_epoch=False, begin=3,
             end=8),
    ]
    make_runner(cfg, StepSpy()).train()
    assert len(seen) == 8
    enc_lrs = set()
    for i, groups in enumerate(seen):
        adv = [g[:3] for g in groups if g[3]]
        # step 0 fills the 16 negatives from keys: they are frozen
        assert adv == [(0.0, 0.0, 0.0) if i == 0 else (3.0, 0.9, 1e-4)]
        enc_lrs |= {g[0] for g in groups if not g[3]}
    assert len(enc_lrs) >= 6


def test_resume_is_exact(data_root, tmp_path):
    """Stop after epoch 1 (in the middle of the key initialisation: K=80 is
    filled in iteration 5), resume: same weights, negatives, losses."""
    full_rec, resumed_rec = LossRecorder(), LossRecorder()
    cfg = tiny_adco_cfg(data_root, tmp_path / 'full', epochs=3,
                        num_negatives=80)
    full = make_runner(cfg, full_rec.hook)
    full.train()

    cfg_a = tiny_adco_cfg(data_root, tmp_path / 'part', epochs=3,
                          num_negatives=80)
    cfg_a.train_cfg.max_epochs = 1  # the same schedule, stopped early
    make_runner(cfg_a).train()
    ckpt = torch.load(tmp_path / 'part' / 'epoch_1.pth', weights_only=False)
    assert int(ckpt['state_dict']['negatives.num_filled']) == 64
    cfg_b = tiny_adco_cfg(data_root, tmp_path / 'part', epochs=3,
                          num_negatives=80)
    cfg_b.resume = True
    cfg_b.load_from = str(tmp_path / 'part' / 'epoch_1.pth')
    resumed = make_runner(cfg_b, resumed_rec.hook)
    resumed.train()

    tail = [loss for loss in full_rec.losses if loss[0] >= 4]
    assert len(tail) == 8
    assert resumed_rec.losses == tail
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = full.optim_wrapper.state_dict()
    sb = resumed.optim_wrapper.state_dict()
    for pid in sa['state']:
        for name, v in sa['state'][pid].items():
            assert torch.equal(v, sb['state'][pid][name])


@pytest.mark.parametrize('change, error, match', [
    (dict(optim_wrapper=dict(paramwise_cfg=dict(custom_keys={}))),
     ValueError, 'does not have maximize=True'),
    (dict(optim_wrapper=dict(paramwise_cfg=dict(
        custom_keys={'negative_bank': NEG_KEYS['negatives']}))), ValueError,
     'does not have maximize=True'),
    (dict(optim_wrapper=dict(paramwise_cfg=dict(custom_keys={
        'negatives': NEG_KEYS['negatives'],
        'neck': dict(maximize=True)}))), ValueError,
     'other than negatives.weight'),
    (dict(optim_wrapper=dict(paramwise_cfg=dict(
        custom_keys={'negatives': dict(adversarial=True)}))), ValueError,
     "the key 'adversarial'"),
    (dict(optim_wrapper=dict(paramwise_cfg=dict(custom_keys=NEG_KEYS),
                             clip_grad=dict(max_norm=1.0))), ValueError,
     'Remove clip_grad'),
    (dict(optim_wrapper=dict(negatives_key='negative_bank')), ValueError,
     "negatives_key='negative_bank'"),
    (dict(model=dict(head=dict(loss=dict(mem_temperature=0.0)))), ValueError,
     r'mem_temperature \(mem_t\)'),
])
def test_bad_config_is_a_clear_error(data_root, tmp_path, change, error,
                                     match):
    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=1)
    if change.get('optim_wrapper', {}).get('paramwise_cfg'):
        # the deprecated form: maximize=True through custom_keys
        cfg.optim_wrapper = dict(type='OptimWrapper',
                                 optimizer=cfg.optim_wrapper.optimizer,
                                 **change['optim_wrapper'])
    else:
        cfg.merge_from_dict(change)
    with pytest.raises(error, match=match):
        make_runner(cfg).train()


def test_hook_warns_once_when_negatives_are_out_of_reach():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from mm_instdisc.engine.hooks import AdCoNegativesInitHook
    warned_at = []
    runner = SimpleNamespace(
        model=build_tiny_adco(negatives_init='random'), iter=0,
        message_hub=MessageHub.get_current_instance(),
        logger=SimpleNamespace(
            warning=lambda msg: warned_at.append((runner.iter, msg)),
            info=lambda msg: None))
    hook = AdCoNegativesInitHook(log_interval=1000, dead_iters=3)
    for i, p in enumerate([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]):
        runner.iter = i
        hook.after_train_iter(runner, i,
                              outputs=dict(neg_prob=torch.tensor(p)))
    assert [i for i, _ in warned_at] == [5]
    assert 'mem_temperature' in warned_at[0][1]


# -------------------------------------------------------- distributed
def _worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # different init on purpose
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mm_instdisc.engine  # noqa: F401
    init_default_scope('mmpretrain')
    # 8 global keys/step: 2 init steps; warm temperatures: sizeable gradients
    model = build_tiny_adco(num_negatives=12, head=dict(
        type='LossHead',
        loss=dict(type='AdCoLoss', temperature=0.5, mem_temperature=0.5)))
    ddp = torch.nn.parallel.DistributedDataParallel(model,
                                                    broadcast_buffers=False)
    wrapper = build_optim_wrapper(ddp, dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
        paramwise_cfg=dict(custom_keys=NEG_KEYS)))
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from mm_instdisc.engine.hooks import AdCoNegativesInitHook
    hook = AdCoNegativesInitHook()
    runner = SimpleNamespace(
        model=ddp, optim_wrapper=wrapper, iter=0,
        message_hub=MessageHub.get_instance(f'adco_ddp_{rank}'),
        logger=SimpleNamespace(info=lambda *a: None,
                               warning=lambda *a: None))
    hook.before_train(runner)
    local = []
    model.negatives.weight.register_hook(
        lambda g: local.append(g.detach().clone()))  # before DDP's all-reduce
    rows = []
    for step in range(5):
        runner.iter = step
        frozen = not model.negatives.initialised
        hook.before_train_iter(runner, step)
        data = model.data_preprocessor(adco_views(4, seed=10 * step + rank),
                                       True)
        losses = ddp(**data, mode='loss')
        wrapper.backward(losses['loss'])
        grad = model.negatives.weight.grad.clone()
        wrapper.step()
        wrapper.zero_grad()
        hook.after_train_iter(runner, step)  # writes the keys
        rows.append(dict(weight=model.negatives.weight.detach().clone(),
                         grad=grad, local=local[-1],
                         filled=int(model.negatives.num_filled),
                         frozen=frozen))
    torch.save(rows, os.path.join(out, f'rank{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early aborts gloo now and then


@pytest.mark.dist
def test_negatives_identical_across_two_gloo_ranks(tmp_path):
    spawn_gloo(_worker, 2, str(tmp_path))
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    assert [r['filled'] for r in r0] == [8, 12, 12, 12, 12]
    assert [r['frozen'] for r in r0] == [True, True, False, False, False]
    for step, (a, b) in enumerate(zip(r0, r1)):
        assert torch.equal(a['weight'], b['weight']), f'step {step}'
        # each rank saw different data, DDP averaged the two gradients
        assert not torch.allclose(a['local'], b['local'], rtol=1e-2, atol=0)
        mean = 0.5 * (a['local'] + b['local'])
        assert torch.allclose(a['grad'], mean, rtol=1e-5, atol=1e-30)
        assert torch.allclose(b['grad'], mean, rtol=1e-5, atol=1e-30)
    # the ascent steps had real gradients and moved the negatives
    assert all(r['grad'].abs().max() > 1e-3 for r in r0[2:])
    assert not torch.allclose(r0[2]['weight'], r0[4]['weight'], atol=1e-3)


# ------------------------------------------------------------- configs
ADCO_CONFIGS = sorted(
    os.path.join(ROOT, 'configs', 'adco', f)
    for f in os.listdir(os.path.join(ROOT, 'configs', 'adco')))
EXPECTED = {  # file -> (K, t, mem_t, lr, symmetric, multi_crop, views)
    'adco_resnet50_8xb32-coslr-200e_in1k.py':
    (65536, 0.12, 0.02, 0.03, False, False, 2),
    'adco-neg16384_resnet50_8xb32-coslr-200e_in1k.py':
    (16384, 0.12, 0.02, 0.03, False, False, 2),
    'adco-neg8192_resnet50_8xb32-coslr-200e_in1k.py':
    (8192, 0.14, 0.03, 0.04, False, False, 2),
    'adco_resnet50_8xb32-sym-coslr-200e_in1k.py':
    (65536, 0.12, 0.02, 0.03, True, False, 2),
    'adco_resnet50_8xb32-mcrop-coslr-200e_in1k.py':
    (65536, 0.12, 0.02, 0.03, False, True, 6),
    'adco_resnet18-w16_1xb128-coslr-10e_fashion-mnist.py':
    (4096, 0.12, 0.02, 0.03, False, False, 2),
    'adco_resnet18-w16_1xb128-sym-coslr-10e_fashion-mnist.py':
    (4096, 0.12, 0.02, 0.03, True, False, 2),
    'adco_resnet18-w16_1xb128-mcrop-coslr-10e_fashion-mnist.py':
    (4096, 0.12, 0.02, 0.03, False, True, 5),
    'adco_resnet18-w16_1xb64-coslr-2e_fashion-mnist-10k.py':
    (4096, 0.12, 0.02, 0.03, False, False, 2),
    'adco_resnet18-w16_2xb64-coslr-20e_fashion-mnist-10k.py':
    (4096, 0.12, 0.02, 0.03, False, False, 2),
    # the 15-minute recipe: mem_t 0.05 (with the negatives below) keeps the
    # negatives adversarial
    'adco_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py':
    (8192, 0.12, 0.05, 0.06, False, False, 2),
    # your own images: the 15-minute recipe with 4096 negatives
    'adco_resnet18-w32_1xb128-bf16-coslr-100e_custom.py':
    (4096, 0.12, 0.05, 0.06, False, False, 2),
}
# negatives: (lr, lr on the param schedule, key encoder reset after the
# initialisation); the official code's (3, constant, reset) unless listed
NEGATIVES = {
    'adco_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py':
    (1.0, True, False),
    'adco_resnet18-w32_1xb128-bf16-coslr-100e_custom.py': (1.0, True, False),
}


def test_every_adco_config_is_checked():
    assert sorted(os.path.basename(p) for p in ADCO_CONFIGS) == sorted(
        EXPECTED)


@pytest.mark.parametrize('path', ADCO_CONFIGS,
                         ids=[os.path.basename(p) for p in ADCO_CONFIGS])
def test_adco_config_recipe_and_optim_wrapper(path):
    """Each config's recipe, and its AdversarialNegativesOptimWrapper
    (negatives ascend with constant lr 3, momentum 0.9, wd 1e-4)."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import HOOKS, MODELS

    import mm_instdisc.engine  # noqa: F401
    import mm_instdisc.models  # noqa: F401
    from mm_instdisc.engine.optimizers import AdversarialNegativesOptimWrapper
    k, t, mem_t, lr, sym, mcrop, n_views = EXPECTED[os.path.basename(path)]
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    m = cfg.model
    assert (m.num_negatives, m.head.loss.temperature,
            m.head.loss.mem_temperature, m.symmetric,
            m.multi_crop) == (k, t, mem_t, sym, mcrop)
    assert m.head.loss.batch_negatives and m.negatives_init == 'keys'
    assert cfg.optim_wrapper.optimizer.lr == lr
    views = [t for t in cfg.train_dataloader.dataset.pipeline
             if t.type == 'MultiView']
    if views:
        num = views[0].num_views
    else:  # the views are made by the batch augmentation
        num = m.data_preprocessor.augment.num_views
    assert (num if isinstance(num, int) else sum(num)) == n_views
    model = MODELS.build(m)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    neg_lr, scheduled, reset = NEGATIVES.get(os.path.basename(path),
                                             (3.0, False, True))
    assert model.reset_key_encoder_after_init is reset
    hooks = [h for h in (HOOKS.build(c) for c in cfg.custom_hooks)
             if type(h).__name__ == 'AdCoNegativesInitHook']
    assert len(hooks) == 1
    assert hooks[0].schedule_adversarial_lr is None  # the wrapper's now
    assert isinstance(wrapper, AdversarialNegativesOptimWrapper)
    assert wrapper.negatives_params == [model.negatives.weight]
    (group, ) = wrapper.negatives_groups()
    assert group['params'] == [model.negatives.weight]
    assert group['maximize'] is True
    assert wrapper.schedule_negatives_lr is scheduled
    pinned = dict(momentum=0.9, weight_decay=1e-4)
    if not scheduled:
        pinned['lr'] = neg_lr
    assert wrapper.pinned(group) == pinned
    assert group['lr'] == neg_lr
    assert not [g for g in wrapper.optimizer.param_groups
                if g.get('maximize') and g is not group]
    if 'in1k' in path:
        sched = cfg.param_scheduler[0]
        assert (sched.type, sched.T_max, sched.eta_min) == (
            'CosineAnnealingLR', 200, 6e-4)
        assert cfg.train_cfg.max_epochs == 200


@pytest.mark.parametrize('name', [
    'adco_resnet18-w16_1xb128-sym-coslr-10e_fashion-mnist.py',
    'adco_resnet18-w16_1xb128-mcrop-coslr-10e_fashion-mnist.py',
])
def test_fashion_mnist_variants_train(data_root, tmp_path, name):
    """The symmetric and multi-crop pipelines and models, end to end."""
    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=1, num_negatives=16,
                        config=os.path.join(ROOT, 'configs', 'adco', name))
    rec = LossRecorder()
    runner = make_runner(cfg, rec.hook)
    runner.train()
    assert len(rec.losses) == 4
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in rec.losses)
    assert runner.model.negatives.initialised


def test_knn_reference_hook_validates_a_bankless_model(data_root, tmp_path):
    """KNNReferenceHook: kNN validation of AdCo during training, equal to a
    kNN computed by hand from the extracted features."""
    from mmengine.config import Config

    from mm_instdisc.evaluation import build_knn_dataloaders, extract_features
    from mm_instdisc.modules import knn_evaluate
    cfg = tiny_adco_cfg(data_root, tmp_path, epochs=1)
    cfg.val_dataloader = copy.deepcopy(cfg.test_dataloader)
    cfg.val_evaluator = dict(type='KNNMetric', ks=(5, ), temperature=0.07)
    cfg.val_cfg = dict()
    cfg.train_cfg.val_interval = 1
    cfg.custom_hooks.append(dict(type='KNNReferenceHook', batch_size=16))
    recorded = []

    from mmengine.hooks import Hook

    class Grab(Hook):
        def after_val_epoch(self, runner, metrics=None):
            recorded.append(dict(metrics))

    runner = make_runner(cfg, Grab())
    runner.train()
    assert len(recorded) == 1 and 'knn/top1_k5' in recorded[0]
    model = runner.model
    tr, te = build_knn_dataloaders(Config(cfg.to_dict()), batch_size=16)
    ref = extract_features(model, tr, 'embed', progress=False)
    qry = extract_features(model, te, 'embed', progress=False)
    expected = knn_evaluate(ref[0], ref[1], qry[0], qry[1], ks=(5, ))[5][1]
    assert recorded[0]['knn/top1_k5'] == pytest.approx(expected, abs=1e-4)


def test_knn_reference_hook_rejects_bad_sizes():
    from mm_instdisc.engine.hooks import KNNReferenceHook
    with pytest.raises(ValueError, match='batch_size=0'):
        KNNReferenceHook(batch_size=0)


def test_test_tool_evaluates_a_bankless_checkpoint(data_root, tmp_path):
    """tools/test.py on an AdCo checkpoint: KNNReferenceHook is added."""
    from tests.helpers import run_tool
    cfg = tiny_adco_cfg(data_root, tmp_path, epochs=1)
    cfg.test_evaluator = dict(type='KNNMetric', ks=(5, ), temperature=0.07)
    make_runner(cfg).train()
    cfg_path = tmp_path / 'tiny_adco.py'
    cfg.dump(str(cfg_path))
    r = run_tool('tools/test.py', cfg_path, tmp_path / 'epoch_1.pth',
                 '--work-dir', tmp_path / 't', '--out', tmp_path / 'm.json')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "added dict(type='KNNReferenceHook')" in r.stdout
    import json
    metrics = json.load(open(tmp_path / 'm.json'))
    assert 0 <= metrics['knn/top1_k5'] <= 100


def test_amp_on_cpu_trains_adco_in_bf16_with_ascending_negatives(
        data_root, tmp_path):
    """tools/train.py --amp on a machine without a GPU picks the bf16
    AutocastOptimWrapper, made adversarial by the config's constructor; the
    negatives still ascend."""
    import argparse

    from mm_instdisc.apis.train import merge_args
    cfg = tiny_adco_cfg(data_root, tmp_path / 'w', epochs=2)
    args = argparse.Namespace(no_validate=True, amp=True, resume=None,
                              auto_scale_lr=False, no_pin_memory=True,
                              no_persistent_workers=True, cfg_options=None,
                              work_dir=str(tmp_path / 'w'), config='x.py',
                              launcher='none')
    cfg = merge_args(cfg, args)
    if torch.cuda.is_available():
        pytest.skip('on a GPU machine --amp picks the fp16 wrapper')
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    rec = StateRecorder()
    runner = make_runner(cfg, rec.hook)
    runner.train()
    rows = rec.rows
    assert [r['frozen'] for r in rows] == [True] * 3 + [False] * 5
    for prev, cur in zip(rows[2:], rows[3:]):
        assert not torch.equal(prev['weight'], cur['weight'])
        assert torch.isfinite(cur['weight']).all()
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
