"""The layering the README describes, checked on the import statements of
every file (static, with ``ast``; lazy imports inside functions count too):

modules (torch only) -> models / engine / evaluation / datasets / det ->
tools, examples.
"""
import ast
import glob
import os.path as osp

import pytest

from tests.helpers import ROOT


def imported_modules(path):
    """Absolute names of every module a file imports (relative imports
    resolved against the file's package)."""
    rel = osp.relpath(path, ROOT)
    package = osp.dirname(rel).replace(osp.sep, '.')
    names = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            names.append(mod)
            # `from pkg import submodule` imports the submodule
            names += [f'{mod}.{a.name}' for a in node.names
                      if _is_module(f'{mod}.{a.name}')]
    return names


def _is_module(name):
    path = osp.join(ROOT, *name.split('.'))
    return osp.isfile(path + '.py') or osp.isdir(path)


def files(pattern):
    found = sorted(glob.glob(osp.join(ROOT, pattern), recursive=True))
    assert found, pattern
    return found


def offending(pattern, forbidden):
    bad = []
    for path in files(pattern):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + '.') for f in forbidden):
                bad.append(f'{osp.relpath(path, ROOT)} imports {name}')
    return bad


def test_modules_import_only_torch():
    allowed_roots = {'torch', 'numpy', 'mm_instdisc'}
    bad = []
    for path in files('mm_instdisc/modules/**/*.py'):
        for name in imported_modules(path):
            root = name.split('.')[0]
            if name.startswith('mm_instdisc.') and not name.startswith(
                    'mm_instdisc.modules'):
                bad.append(f'{osp.relpath(path, ROOT)} imports {name}')
            elif root not in allowed_roots and root not in _stdlib():
                bad.append(f'{osp.relpath(path, ROOT)} imports {name}')
    assert not bad, bad


def _stdlib():
    import sys
    return sys.stdlib_module_names


@pytest.mark.parametrize('pattern,forbidden', [
    # the engine (hooks, optim wrappers) never reaches into model files
    ('mm_instdisc/engine/**/*.py', ['mm_instdisc.models']),
    # evaluation reads any model out through its interface only
    ('mm_instdisc/evaluation/**/*.py',
     ['mm_instdisc.models', 'mm_instdisc.engine']),
    ('mm_instdisc/utils/**/*.py',
     ['mm_instdisc.models', 'mm_instdisc.engine', 'mm_instdisc.evaluation']),
    # tools use the package's public pieces, not hook files
    ('tools/**/*.py', ['mm_instdisc.engine.hooks.' + osp.splitext(
        osp.basename(f))[0] for f in glob.glob(
            osp.join(ROOT, 'mm_instdisc/engine/hooks/*.py'))]),
    # the experiments library sits on top: nothing in the package uses it
    ('mm_instdisc/[!b]*/**/*.py', ['mm_instdisc.benchmarks']),
    # benchmark scripts share code through the library, not each other
    ('tools/benchmarks/*.py', ['importlib'] + [
        osp.splitext(osp.basename(f))[0] for f in glob.glob(
            osp.join(ROOT, 'tools/benchmarks/*.py'))]),
    # the examples are the plain-PyTorch way in
    ('examples/**/*.py', ['mm_instdisc.models', 'mm_instdisc.datasets',
                          'mm_instdisc.engine']),
])
def test_layer_does_not_import(pattern, forbidden):
    bad = offending(pattern, forbidden)
    assert not bad, bad


def test_import_scan_sees_relative_and_lazy_imports():
    """The scan itself: relative and lazy (in-function) imports are found."""
    names = imported_modules(
        osp.join(ROOT, 'mm_instdisc', 'engine', 'hooks',
                 'memory_bank_hook.py'))
    assert 'mm_instdisc.engine.hooks._checkpoint' in names
    assert any(n.startswith('mm_instdisc.evaluation') for n in names)
