"""2-process gloo runs: banks identical across ranks after init and after steps."""
import os

import pytest
import torch

from tests.helpers import (ROOT, build_tiny_npid, npid_batch, run_dist_train,
                           spawn_gloo, write_fashion_mnist)


def _worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # different init on purpose
    from mmengine.dist import broadcast

    from mm_instdisc.engine.hooks import MemoryBankHook
    model = build_tiny_npid(bank_size=32)
    banks = []
    broadcast(model.memory_bank.bank, src=0)  # what MemoryBankHook does
    banks.append(model.memory_bank.bank.clone())
    ddp = torch.nn.parallel.DistributedDataParallel(model,
                                                    broadcast_buffers=False)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(3):
        idx = [rank * 8 + step * 2 + j for j in range(2)]  # disjoint per rank
        data = model.data_preprocessor(npid_batch(idx), True)
        loss = ddp(**data, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.flush_bank_update()
        MemoryBankHook.check_sync(model.memory_bank.bank)
        banks.append(model.memory_bank.bank.clone())
    torch.save(banks, os.path.join(out, f'rank{rank}.pt'))
    # release DDP's reducer before the group it talks through: a gloo
    # worker torn down with the reducer alive aborted once under load
    dist.barrier()
    del ddp, opt
    dist.destroy_process_group()


@pytest.mark.dist
def test_banks_identical_across_two_gloo_ranks(tmp_path):
    spawn_gloo(_worker, 2, str(tmp_path))
    b0 = torch.load(tmp_path / 'rank0.pt')
    b1 = torch.load(tmp_path / 'rank1.pt')
    for step, (x, y) in enumerate(zip(b0, b1)):
        assert torch.equal(x, y), f'banks differ after step {step}'
    # both ranks' rows were updated on both ranks
    changed = (b0[-1] != b0[0]).any(1).nonzero().flatten().tolist()
    assert {0, 1, 8, 9} <= set(changed)


@pytest.mark.dist
def test_dist_train_sh_two_cpu_processes(tmp_path):
    """`bash tools/dist_train.sh CONFIG 2` on CPU, with rank bank checks."""
    data = write_fashion_mnist(tmp_path / 'fm', n_train=64, n_test=32)
    cfg = os.path.join(
        ROOT, 'configs/npid/npid_resnet18-w16_1xb128-steplr-2e_fashion-mnist-10k.py')
    opts = [
        f'train_dataloader.dataset.data_root={data}',
        f'val_dataloader.dataset.data_root={data}',
        f'test_dataloader.dataset.data_root={data}',
        'train_dataloader.dataset.indices=64', 'model.bank_size=64',
        'train_dataloader.batch_size=8', 'val_dataloader.dataset.indices=32',
        'model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
        'model.neck.in_channels=64', 'model.head.loss.num_negatives=16',
        'train_cfg.max_epochs=1',
        'custom_hooks.0.sync_check_interval=1',  # MemoryBankHook
    ]
    run_dist_train(cfg, tmp_path / 'w', opts)
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=False)
    assert len(ckpt['rng_states']) == 2


def _shutdown_worker(rank, world_size, port, out_dir):
    import torch.distributed as dist

    from mm_instdisc.utils import shutdown_distributed
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    first = shutdown_distributed()
    torch.save(dict(first=first, alive=dist.is_initialized(),
                    again=shutdown_distributed()),
               os.path.join(out_dir, f'rank{rank}.pth'))


@pytest.mark.dist
def test_shutdown_distributed_destroys_the_group(tmp_path):
    """The tools end with shutdown_distributed(): every rank leaves with its
    group destroyed (a second call, or a call without a group, is a no-op)."""
    from mm_instdisc.utils import exit_distributed, shutdown_distributed
    assert shutdown_distributed() is False
    assert exit_distributed() is None  # no group: returns, no os._exit
    spawn_gloo(_shutdown_worker, 2, str(tmp_path))
    for rank in range(2):
        got = torch.load(tmp_path / f'rank{rank}.pth')
        assert got == dict(first=True, alive=False, again=False)
