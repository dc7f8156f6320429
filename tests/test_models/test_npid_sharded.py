"""NPID with its memory bank split across the ranks
(``NPID(bank=dict(type='ShardedMemoryBank', ...))``).

The registered model over 2 gloo processes gives the loss, the feature
gradients and the bank update of the replicated model on the gathered batch
(written out here: NPIDLoss over the whole bank, MemoryBank.update), in
float32 to 1e-6; whole-bank checkpoints re-shard themselves; bad options are
clear errors. The Runner-level resume (2 processes, and 2 -> 1) is in
tests/test_faults/test_distributed.py."""
import os

import pytest
import torch

from tests.helpers import ROOT, spawn_gloo

CONFIG = os.path.join(
    ROOT, 'configs/npid/npid_resnet18-w16_1xb128-steplr-10e_fashion-mnist.py')
N, D, B = 40, 16, 4


def build(mode='softmax', bank=None, **head):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import mm_instdisc.models  # noqa: F401
    cfg = Config.fromfile(CONFIG).model
    cfg.bank_size, cfg.feat_dim = N, D
    cfg.backbone.stem_channels = cfg.backbone.base_channels = 8
    cfg.neck.in_channels, cfg.neck.out_channels = 64, D
    cfg.head = dict(type='LossHead', loss=dict(
        type='NPIDLoss', mode=mode, temperature=0.1, **head))
    if bank is not None:
        cfg.bank = bank
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _batch(rank):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(10 + rank)
    x = torch.rand(B, 1, 28, 28, generator=g)
    idx = [(rank * B + i) * 3 % N for i in range(B)]
    return x, idx, [DataSample(metainfo=dict(sample_idx=i)) for i in idx]


# case -> (NPIDLoss mode, its other options)
CASES = {
    'softmax': ('softmax', {}),
    'sampled_softmax': ('sampled_softmax',
                        dict(shared_negatives=True, num_negatives=10)),
    'sampled_softmax_per_sample': ('sampled_softmax', dict(num_negatives=10)),
    'nce': ('nce', dict(num_negatives=10, prox_weight=0.3)),
    'nce_batch_z_shared': ('nce', dict(num_negatives=10, z_mode='batch',
                                       shared_negatives=True)),
}


def _worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    for case in CASES:  # one process group for every case
        _case(rank, out, case)
        dist.barrier()
    # gather_to's sender can be done before the receiver: tearing gloo down
    # then once aborted a worker ('terminate called without an active
    # exception', CI at 9670212), so both ranks leave together
    dist.barrier()
    dist.destroy_process_group()


def _case(rank, out, case):
    mode, head = CASES[case]
    model = build(mode, dict(type='ShardedMemoryBank', seed=3), **head)
    model.eval()  # BN with running statistics: features do not depend on
    # the batch, so one process can recompute every rank's features
    full0 = model.memory_bank.gather_full()
    draws0 = int(model.memory_bank.draws[1])
    x, idx, samples = _batch(rank)
    out_loss = model.loss([x], samples)
    out_loss['loss'].backward()
    grad = [p.grad.clone() for p in model.neck.parameters()]
    model.flush_bank_update()
    res = dict(loss=out_loss['loss'].detach(), grad=grad,
               full0=full0, full1=model.memory_bank.gather_full(),
               draws=(draws0, int(model.memory_bank.draws[1])),
               ckpt_bank=model.memory_bank.gather_to(0),
               rows=(model.memory_bank.start, model.memory_bank.end),
               ignored=getattr(model, '_ddp_params_and_buffers_to_ignore',
                               None))
    torch.save(res, os.path.join(out, f'{case}_rank{rank}.pt'))


def _reference(world, case, full0):
    """One process, replicated bank: the mean over ranks of each rank's
    mean loss, its gradient, and the update by the gathered batch."""
    import torch.nn.functional as F

    from mm_instdisc.modules import (MemoryBank, ShardedMemoryBank,
                                     sample_negatives)
    mode, head = CASES[case]
    model = build(mode)
    model.eval()
    model.memory_bank.bank.copy_(full0)
    xs, idxs = zip(*[_batch(r)[:2] for r in range(world)])
    x, idx = torch.cat(xs), torch.tensor(sum(idxs, []))
    feats = model.embed([x])
    bank = full0
    if mode == 'softmax':
        per = F.cross_entropy(feats @ bank.t() / 0.1, idx, reduction='none')
    else:  # the bank's first draw of negatives, seed 3
        g = ShardedMemoryBank(N, D, seed=3, rank=0,
                              world_size=1).negatives_generator()
        shared = head.get('shared_negatives', False)
        neg = sample_negatives(idx, 10, N, shared=shared, generator=g)
        rows = bank[neg]  # (m, D) shared, or (B, m, D)
        l_neg = (feats @ rows.t() if shared else
                 torch.einsum('bd,bmd->bm', feats, rows)) / 0.1
        l_pos = (feats * bank[idx]).sum(1) / 0.1
        if mode == 'sampled_softmax':
            per = F.cross_entropy(torch.cat([l_pos[:, None], l_neg], 1),
                                  torch.zeros(len(idx), dtype=torch.long),
                                  reduction='none')
        else:  # NCE as in the paper: h = P / (P + m / N), P = exp(l) / Z
            m, e_neg = 10, l_neg.detach().exp()
            if head.get('z_mode', 'sample') == 'sample':
                z = N / m * e_neg.sum(1, keepdim=True)  # eq. 8 per sample
            else:  # one Z for the gathered batch
                z = N * e_neg.mean()
            h_pos = l_pos.exp() / (l_pos.exp() + m * z.squeeze() / N)
            h_neg = l_neg.exp() / (l_neg.exp() + m * z / N)
            per = -(h_pos.log() + (1 - h_neg).log().sum(1))
            if head.get('prox_weight'):
                per = per + head['prox_weight'] * (
                    feats - bank[idx]).pow(2).sum(1)
    # each rank's mean, gradients summed over ranks then averaged (DDP)
    loss = per.view(world, B).mean(1).mean()
    loss.backward()
    grad = [p.grad.clone() for p in model.neck.parameters()]
    mb = MemoryBank(N, D, momentum=0.5)
    mb.bank.copy_(bank)
    mb.update(idx, feats.detach())
    return dict(loss=loss.detach(), grad=grad, full1=mb.bank)


WORLD = 2


def _spawn(folder):
    spawn_gloo(_worker, WORLD, str(folder))
    return sorted(CASES)


@pytest.fixture(scope='module')
def sharded_runs(tmp_path_factory):
    """Every case on 2 gloo processes, one spawn for all of them."""
    from tests.helpers import shared_result
    return shared_result(tmp_path_factory, 'npid_sharded', _spawn)[0]


@pytest.mark.dist
@pytest.mark.parametrize('case', list(CASES))
def test_sharded_npid_equals_replicated(sharded_runs, case):
    world = WORLD
    got = [torch.load(sharded_runs / f'{case}_rank{r}.pt')
           for r in range(world)]
    ref = _reference(world, case, got[0]['full0'])
    loss = torch.stack([g['loss'] for g in got]).mean()
    assert torch.allclose(loss, ref['loss'], atol=1e-6), (loss, ref['loss'])
    for i, g_ref in enumerate(ref['grad']):  # DDP's mean over ranks
        g = torch.stack([r['grad'][i] for r in got]).mean(0)
        assert torch.allclose(g, g_ref, atol=1e-6, rtol=1e-5), i
    for g in got:
        assert torch.allclose(g['full1'], ref['full1'], atol=1e-6)
        assert g['ignored'] == ['memory_bank.bank', 'memory_bank.shard',
                                'memory_bank.draws']
    # every rank drew the same number of negatives' streams (0 or 1)
    assert len({g['draws'] for g in got}) == 1
    assert got[0]['draws'][1] - got[0]['draws'][0] == int(case != 'softmax')
    assert got[0]['rows'] == (0, N // 2) and got[1]['rows'] == (N // 2, N)
    assert torch.equal(got[0]['ckpt_bank'], got[0]['full1'])
    assert got[1]['ckpt_bank'] is None  # gathered on rank 0 only


def test_whole_bank_checkpoint_reshards():
    """A whole bank (what MemoryBankHook writes, or a replicated
    MemoryBank's) loads into any shard; another shard's rows do not."""
    from mm_instdisc.modules import MemoryBank, ShardedMemoryBank
    whole = ShardedMemoryBank(N, D, seed=1, rank=0, world_size=1)
    state = whole.state_dict()
    for world in (2, 3):
        for rank in range(world):
            part = ShardedMemoryBank(N, D, seed=9, rank=rank,
                                     world_size=world)
            part.load_state_dict(state)
            assert torch.equal(part.bank, whole.bank[part.start:part.end])
            assert part.shard.tolist() == [part.start, part.end, N, world]
    mb = MemoryBank(N, D)
    part = ShardedMemoryBank(N, D, rank=1, world_size=2)
    part.load_state_dict({'bank': mb.bank.clone(), 'shard': torch.tensor(
        [0, N, N, 1]), 'draws': torch.tensor([0, 0])})
    assert torch.equal(part.bank, mb.bank[N // 2:])
    other = ShardedMemoryBank(N, D, rank=1, world_size=4)
    with pytest.raises(RuntimeError, match='rows'):
        other.load_state_dict(part.state_dict())


def test_negatives_stream_is_checkpointed():
    from mm_instdisc.modules import ShardedMemoryBank
    a = ShardedMemoryBank(N, D, seed=5, rank=0, world_size=1)
    first = torch.randperm(N, generator=a.negatives_generator())
    b = ShardedMemoryBank(N, D, seed=5, rank=0, world_size=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(torch.randperm(N, generator=a.negatives_generator()),
                       torch.randperm(N, generator=b.negatives_generator()))
    assert not torch.equal(first, torch.randperm(
        N, generator=a.negatives_generator()))


@pytest.mark.parametrize('bank, head, match', [
    (dict(type='ShardedMemoryBank', dtype='bfloat16', sed=1), {},
     r"Unknown ShardedMemoryBank options \['sed'\]"),
    (dict(type='MemoryBank', dtype='bfloat16'), {},
     'MemoryBank takes no options'),
    (dict(type='Bank'), {}, "Illegal bank type: 'Bank'"),
])
def test_bad_bank_config(bank, head, match):
    with pytest.raises(ValueError, match=match):
        build('softmax', bank, **head)


def test_too_many_negatives_over_shards_is_a_clear_error():
    from mmpretrain.structures import DataSample
    x = torch.rand(2, 1, 28, 28)
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in (0, 1)]
    for mode in ('nce', 'sampled_softmax'):
        model = build(mode, dict(type='ShardedMemoryBank'), num_negatives=N)
        with pytest.raises(ValueError, match=f'num_negatives={N} >= bank '
                           f'length {N}'):
            model.loss([x], samples)


def test_half_precision_bank_builds_and_trains_one_step():
    from mmpretrain.structures import DataSample
    model = build('softmax', dict(type='ShardedMemoryBank', dtype='bfloat16'))
    assert model.memory_bank.bank.dtype == torch.bfloat16
    x = torch.rand(4, 1, 28, 28)
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(4)]
    out = model.loss([x], samples)
    out['loss'].backward()
    model.flush_bank_update()
    assert torch.isfinite(out['loss'])
    assert set(out) >= {'loss', 'pos_sim', 'pos_prob'}
