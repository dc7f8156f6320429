"""mm_instdisc.modules.distributed (the collectives of the package) and
mm_instdisc.modules.info_nce (the one InfoNCE), against obvious references;
the collectives in 2 gloo processes."""
import math
import os

import pytest
import torch
import torch.nn.functional as F

from mm_instdisc.modules import (AdCoLoss, ExemplarLoss, gather_rows, info_nce,
                                 info_nce_from_logits)
from mm_instdisc.modules.distributed import (all_gather_cat,
                                             log_mean_exp_over_ranks)
from mm_instdisc.utils.dist import shutdown_distributed
from tests.helpers import spawn_gloo


def test_single_process_is_the_identity():
    x = torch.randn(3, 4, requires_grad=True)
    rows, offset = gather_rows(x, with_grad=True)
    assert offset == 0 and rows is x
    rows, offset = gather_rows(x)
    assert offset == 0 and not rows.requires_grad and torch.equal(rows, x)
    log_z = torch.tensor(2.5)
    assert log_mean_exp_over_ranks(log_z) is log_z


def _worker(rank, world, port, out):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    # ranks hold different batch sizes: 2 and 3 rows
    x = torch.full((2 + rank, 3), float(rank)).requires_grad_()
    rows, offset = gather_rows(x, with_grad=True)
    (rows * torch.arange(rows.shape[0])[:, None]).sum().backward()
    cat, sizes = all_gather_cat(x.detach())
    log_z = log_mean_exp_over_ranks(torch.tensor(float(rank)))
    torch.save(dict(rows=rows.detach(), offset=offset, grad=x.grad,
                    sizes=sizes, equal=torch.equal(cat, rows.detach()),
                    log_z=log_z), os.path.join(out, f'{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early aborts gloo now and then


@pytest.mark.dist
def test_two_processes(tmp_path):
    spawn_gloo(_worker, 2, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f'{r}.pt') for r in (0, 1))
    expected = torch.cat([torch.zeros(2, 3), torch.ones(3, 3)])
    for r in (r0, r1):
        assert torch.equal(r['rows'], expected)
        assert r['sizes'] == [2, 3] and r['equal']
        # log((e^0 + e^1) / 2) on both ranks
        assert abs(r['log_z'].item() - math.log((1 + math.e) / 2)) < 1e-6
    assert (r0['offset'], r1['offset']) == (0, 2)
    # only this rank's rows carry a gradient: the row numbers of its rows
    assert torch.equal(r0['grad'], torch.tensor([[0.] * 3, [1.] * 3]))
    assert torch.equal(r1['grad'], torch.tensor([[2.] * 3, [3.] * 3,
                                                 [4.] * 3]))


def test_info_nce_against_the_formula():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(10, 8, generator=g), dim=1)
    t = 0.2
    ref = 0.
    for i in range(4):  # positive of q[i]: k[3 + i]
        sims = [float(q[i] @ k[j]) / t for j in range(10)]
        ref -= sims[3 + i] - math.log(sum(math.exp(s) for s in sims))
    assert abs(info_nce(q, k, t, pos_offset=3).item() - ref / 4) < 1e-5


def test_info_nce_is_float32_under_autocast():
    logits = torch.randn(4, 6).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = info_nce_from_logits(logits, torch.zeros(4, dtype=torch.long),
                                    0.1)
    assert loss.dtype == torch.float32


def test_the_contrastive_losses_share_it():
    """AdCo's and Exemplar's losses equal info_nce_from_logits of their own
    logits, to the bit."""
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    w = F.normalize(torch.randn(8, 12, generator=g), dim=0)
    adco = AdCoLoss(temperature=0.12, mem_temperature=0.05)
    enc, neg = adco(q, k, w)
    logits, labels = adco.logits(q, k, w)
    assert torch.equal(enc, info_nce_from_logits(logits, labels, 0.12))
    assert torch.equal(neg, info_nce_from_logits(logits, labels, 0.05))
    queue = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    y, qy = torch.arange(4), torch.arange(20) % 6
    ex = ExemplarLoss(temperature=0.2)
    assert torch.equal(ex(q, k, queue, y, qy), info_nce_from_logits(
        ex.logits(q, k, queue, y, qy), torch.zeros(4, dtype=torch.long), 0.2))
