"""Where the shipped configs are, from a checkout or a wheel.

A wheel carries ``configs/`` (and ``tools/``, for mmpretrain-style use) as
``mm_instdisc/.mim/`` (copied by setup.py, as mmpretrain and mmdet do); an
editable install links them there; a plain checkout has them beside the
package. The console scripts need no tools/: they call
``mm_instdisc.apis``. No OpenMMLab import.
"""
import fnmatch
import os
import os.path as osp
from typing import List

_PKG = osp.dirname(osp.abspath(__file__))


def _roots() -> List[str]:
    """Directories that may hold configs/, in search order."""
    return [osp.join(_PKG, '.mim'), osp.dirname(_PKG)]


def resource_dir(name: str) -> str:
    """A shipped directory (``'configs'``) of the package's ``.mim`` or
    the checkout.

    Raises:
        FileNotFoundError: neither the package's ``.mim`` nor a checkout
            holds it (names both places).
    """
    tried = [osp.join(r, name) for r in _roots()]
    for path in tried:
        if osp.isdir(path):
            return path
    raise FileNotFoundError(
        f'mm_instdisc ships no {name}/ here: looked in {tried}. Reinstall the '
        'package (pip install mm_instdisc / pip install -e CHECKOUT).')


def list_configs(pattern: str = '*') -> List[str]:
    """Names of the shipped configs matching ``pattern`` (fnmatch on the
    path below configs/, e.g. ``'npid/*'`` or ``'*fashion-mnist*'``), sorted;
    ``_base_`` files are left out."""
    root = resource_dir('configs')
    names = []
    for dirpath, dirnames, files in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in ('_base_', '__pycache__'))
        for f in files:
            if f.endswith('.py'):
                rel = osp.relpath(osp.join(dirpath, f), root)
                rel = rel.replace(os.sep, '/')
                if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(
                        rel[:-3], pattern):
                    names.append(rel)
    return sorted(names)


def get_config(name: str) -> str:
    """Absolute path of a shipped config, loadable by mmengine's
    ``Config.fromfile`` from any working directory.

    Args:
        name (str): The config's path below configs/, with or without
            ``.py``, e.g. ``'npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist'``.

    Raises:
        FileNotFoundError: no such config; the message lists the closest
            names (same file name or same folder).
    """
    rel = name if name.endswith('.py') else name + '.py'
    path = osp.join(resource_dir('configs'), rel)
    if osp.isfile(path):
        return osp.abspath(path)
    base = osp.basename(rel)
    folder = rel.split('/')[0]
    close = [c for c in list_configs()
             if osp.basename(c) == base or c.startswith(folder + '/')][:10]
    raise FileNotFoundError(
        f'No shipped config {name!r}. ' +
        (f'Close: {close}.' if close else
         "See mm_instdisc.list_configs('*') for all of them."))
