"""Checkpoints that a crash cannot damage, and a resume that survives one.

* :class:`AtomicLocalBackend` (mmengine file backend ``'atomic_local'``):
  writes a file to a temporary name in the same directory, flushes and
  fsyncs it, then renames it over the target (``os.replace``, atomic on
  POSIX and Windows). A process killed while writing leaves the previous
  checkpoint (and ``last_checkpoint``) intact, plus at most a ``*.tmp`` file.
* :func:`checkpoint_problem`: why a checkpoint file cannot be loaded (None
  if it can), without unpickling it: torch's zip container is opened and
  every member's CRC checked.
* :class:`CheckpointSafetyHook`: makes the runner's ``CheckpointHook`` write
  through the atomic backend (local work dirs only), and on auto-resume
  (``--resume`` without a path) checks the latest checkpoint; a damaged one
  is replaced by the newest intact checkpoint of the work dir, with a
  warning naming both files.
"""
import glob
import os
import os.path as osp
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmpretrain.registry import HOOKS


def _atomic_write(data: Union[bytes, str], filepath: Union[str, Path],
                  mode: str, encoding: Optional[str] = None) -> None:
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(filepath) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text``:
    the target file is either the old one or the complete new one, never a
    truncated write (see the module docstring)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        _atomic_write(obj, filepath, 'wb')

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        _atomic_write(obj, filepath, 'w', encoding=encoding)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a loadable torch checkpoint, or None if it is.

    Checks the container only (existence, zip structure, every member's
    CRC), which catches truncated and overwritten files without unpickling.
    Files in torch's legacy (non-zip) format are accepted as they are.
    """
    if not osp.isfile(path):
        return 'file does not exist'
    if osp.getsize(path) == 0:
        return 'file is empty'
    with open(path, 'rb') as f:
        magic = f.read(4)
    if magic != b'PK\x03\x04':
        # torch's legacy format starts with a pickle protocol byte
        return None if magic[:1] == b'\x80' else (
            f'not a torch checkpoint (starts with {magic!r})')
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f'damaged zip container ({e})'
    if bad is not None:
        return f'member {bad!r} fails its CRC check'
    return None


def intact_checkpoints(work_dir: str) -> List[str]:
    """The work dir's ``*.pth`` files that pass :func:`checkpoint_problem`,
    newest (modification time) first."""
    paths = sorted(glob.glob(osp.join(work_dir, '*.pth')),
                   key=osp.getmtime, reverse=True)
    return [p for p in paths if checkpoint_problem(p) is None]


@HOOKS.register_module()
class CheckpointSafetyHook(Hook):
    """Atomic checkpoint writes and a resume that falls back past a damaged
    latest checkpoint (see the module docstring).

    Runs ``before_run``, i.e. before the runner loads or resumes. With an
    explicit ``--resume PATH`` (``resume=True, load_from=PATH``) a damaged
    file is an error naming it and listing the intact checkpoints beside
    it; with auto-resume the newest intact one is used instead, with a
    warning naming both.

    Args:
        atomic (bool): Switch the ``CheckpointHook`` to atomic writes when it
            writes to a local directory with mmengine's default backend.
            Defaults to True.
        fallback (bool): Fall back to an intact checkpoint on auto-resume.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, atomic: bool = True, fallback: bool = True) -> None:
        self.atomic = atomic
        self.fallback = fallback

    def before_run(self, runner) -> None:
        if self.atomic:
            for hook in runner.hooks:
                if (type(hook).__name__ == 'CheckpointHook'
                        and getattr(hook, 'backend_args', None) is None
                        and '://' not in str(hook.out_dir or '')):
                    hook.backend_args = dict(backend='atomic_local')
        if getattr(runner, '_resume', False):
            self._check_resume(runner)

    def _check_resume(self, runner) -> None:
        explicit = runner._load_from
        path = explicit or find_latest_checkpoint(runner.work_dir)
        if path is None or '://' in str(path):
            return
        problem = checkpoint_problem(path)
        if problem is None:
            return
        others = [p for p in intact_checkpoints(osp.dirname(path) or '.')
                  if osp.abspath(p) != osp.abspath(path)]
        if explicit or not self.fallback or not others:
            found = ', '.join(others) if others else 'none'
            raise RuntimeError(
                f'Cannot resume from {path}: {problem}. Intact checkpoints '
                f'in its directory (newest first): {found}. Pass one with '
                '--resume PATH (or delete the damaged file).')
        runner.logger.warning(
            f'The latest checkpoint {path} is damaged ({problem}); resuming '
            f'from the newest intact checkpoint {others[0]} instead.')
        runner._load_from = others[0]
