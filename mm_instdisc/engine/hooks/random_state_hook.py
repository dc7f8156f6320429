import random
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


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


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random generators in checkpoints; restore on resume.

    mmengine re-seeds on resume, so augmentations, shuffling and NCE noise
    samples after a resume would differ from an uninterrupted run. With this
    hook a run resumed from an epoch checkpoint continues exactly as the
    uninterrupted run would have. States are gathered from all ranks at the
    end of each epoch (checkpoints are written by rank 0 only) and restored
    per rank when the world size matches.
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
        ckpt = [h for h in runner.hooks
                if type(h).__name__ == 'CheckpointHook']
        if ckpt and not ckpt[0].by_epoch and ckpt[0].every_n_train_iters(
                runner, ckpt[0].interval):
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
