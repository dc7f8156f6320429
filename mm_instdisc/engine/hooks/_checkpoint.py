"""When does the runner's ``CheckpointHook`` write? Asked by the hooks that
must put state into a checkpoint before it is written (random streams,
averaged BN statistics, a sharded memory bank gathered on rank 0)."""


def checkpoint_after_this_iter(runner) -> bool:
    """Whether the runner's iteration-based ``CheckpointHook`` writes a
    checkpoint after the current iteration (hooks that must put state in
    it, e.g. random streams or averaged BN statistics, run before)."""
    ckpt = [h for h in runner.hooks if type(h).__name__ == 'CheckpointHook']
    if not ckpt or ckpt[0].by_epoch:
        return False
    h = ckpt[0]
    return bool(
        h.every_n_train_iters(runner, h.interval, getattr(h, 'save_begin', 0))
        or (h.save_last and h.is_last_train_iter(runner)))


def checkpoint_after_this_epoch(runner) -> bool:
    """Whether the runner's epoch-based ``CheckpointHook`` writes a
    checkpoint after the current epoch (its interval, start and save_last,
    as it decides)."""
    ckpt = [h for h in runner.hooks if type(h).__name__ == 'CheckpointHook']
    if not ckpt or not ckpt[0].by_epoch:
        return False
    h = ckpt[0]
    return bool(
        h.every_n_epochs(runner, h.interval, getattr(h, 'save_begin', 0))
        or (h.save_last and h.is_last_train_epoch(runner)))
