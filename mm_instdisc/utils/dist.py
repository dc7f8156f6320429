"""Process-group teardown for the command-line tools."""
import torch.distributed as dist


def shutdown_distributed() -> bool:
    """Wait for every rank, then destroy the default process group.

    Without it a process exits with its gloo/NCCL group still alive, and the
    group's threads are torn down during interpreter shutdown: torch warns,
    and with gloo a rank now and then aborts with "terminate called without
    an active exception" (SIGABRT) after training finished, which makes the
    launcher report the whole run as failed. A no-op without a group.

    Returns:
        bool: Whether a process group was destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.barrier()
    dist.destroy_process_group()
    return True
