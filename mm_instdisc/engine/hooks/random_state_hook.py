import random
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ._checkpoint import checkpoint_after_this_iter


def get_rng_state() -> dict:
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


class _RestoreAfterSkip:
    """Stands in for an ``IterBasedTrainLoop``'s data iterator on resume.

    mmengine's loop resumes at iteration ``n`` by calling ``next()`` ``n``
    times on the data iterator, so that the sampler and the workers are
    where they were. Those batches go through the data pipeline, which
    draws from the random generators this hook has just restored, so the
    first trained batch would see different random numbers than in the
    uninterrupted run. This proxy lets the ``n`` skipped batches pass, then
    restores the checkpoint's random state again just before the first
    batch that is trained on, and hands the loop its own iterator back.
    """

    def __init__(self, loop, skip: int, state: dict) -> None:
        self.loop = loop
        self.inner = loop.dataloader_iterator
        self.skip = skip
        self.state = state

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return next(self.inner)
        set_rng_state(self.state)
        self.loop.dataloader_iterator = self.inner
        return next(self.inner)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random generators in checkpoints; restore on resume.

    mmengine re-seeds on resume, so augmentations, shuffling and NCE noise
    samples after a resume would differ from an uninterrupted run. With this
    hook a run resumed from an epoch checkpoint continues exactly as the
    uninterrupted run would have. States are gathered from all ranks at the
    end of each epoch, and after the iterations at which an iteration-based
    ``CheckpointHook`` saves (checkpoints are written by rank 0 only), and
    restored per rank when the world size matches.

    Resuming an ``IterBasedTrainLoop`` at iteration ``n`` is exact too:
    mmengine replays the ``n`` data batches to put the sampler where it was,
    which runs the data pipeline's random transforms; the state is restored
    once more after that replay, before the first trained batch (the replay
    still costs ``n`` batches of data loading, as in mmengine).
    """

    priority = 'HIGH'  # before CheckpointHook

    def __init__(self) -> None:
        self._states: Optional[list] = None

    def _collect(self) -> None:
        self._states = all_gather_object(get_rng_state())

    def after_train_epoch(self, runner) -> None:
        self._collect()

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Sequence[dict]] = None,
                         outputs: Optional[dict] = None) -> None:
        if checkpoint_after_this_iter(runner):
            self._collect()

    # Validation must not shift the training run's random streams (creating a
    # DataLoader iterator draws from torch's generator), or a resumed run,
    # which skips that validation, would diverge.
    def before_val_epoch(self, runner) -> None:
        self._val_state = get_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        state = getattr(self, '_val_state', None)
        if state is not None:
            set_rng_state(state)
            self._val_state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._states or [get_rng_state()]
        checkpoint['rng_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('rng_states')
        if not states:
            return
        if len(states) != get_world_size():
            runner.logger.warning(
                f'Checkpoint has random states of {len(states)} ranks, this '
                f'run has {get_world_size()}: not restoring them.')
            return
        self._pending = states[get_rank()]

    def before_train(self, runner) -> None:
        # after Runner.resume() (which may re-seed) and before the first batch
        state = getattr(self, '_pending', None)
        if state is not None:
            set_rng_state(state)
            self._pending = None
            loop = runner.train_loop
            skip = int(getattr(loop, '_iter', 0) or 0)
            if skip > 0 and hasattr(loop, 'dataloader_iterator'):
                loop.dataloader_iterator = _RestoreAfterSkip(loop, skip,
                                                             state)
