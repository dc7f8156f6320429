"""The layering docs/contributing.md describes, checked on the import statements of
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


#: the scripts in benchmarks/ (not its package file or sys.path helper)
BENCHMARK_SCRIPTS = sorted(
    osp.splitext(osp.basename(f))[0]
    for f in glob.glob(osp.join(ROOT, 'benchmarks', '*.py'))
    if osp.basename(f) not in ('__init__.py', '_path.py'))


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
    # the experiments (benchmarks/, benchmarks.lib) sit on top: neither the
    # package nor the tools users run import them
    ('mm_instdisc/**/*.py', ['benchmarks']),
    ('tools/**/*.py', ['benchmarks']),
    # benchmark scripts share code through benchmarks.lib, not each other
    # (nor does the library reach into a script)
    ('benchmarks/**/*.py', ['importlib'] + [
        prefix + name for name in BENCHMARK_SCRIPTS
        for prefix in ('', 'benchmarks.')]),
    # the examples are the plain-PyTorch way in: of mm_instdisc.datasets
    # only its Fashion-MNIST reader, which itself imports no OpenMMLab
    ('examples/**/*.py', ['mm_instdisc.models', 'mm_instdisc.engine'] + [
        'mm_instdisc.datasets.' + osp.splitext(osp.basename(f))[0]
        for f in glob.glob(osp.join(ROOT, 'mm_instdisc/datasets/*.py'))
        if osp.basename(f) not in ('__init__.py', 'fashion_mnist_reader.py')
    ]),
    ('mm_instdisc/datasets/fashion_mnist_reader.py',
     ['mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mm_instdisc.utils']),
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


def _setup_py_literal(node_test):
    """The literal value of the first node of setup.py that ``node_test``
    picks out (a ``(node) -> value node or None`` function)."""
    tree = ast.parse(open(osp.join(ROOT, 'setup.py')).read())
    for node in ast.walk(tree):
        value = node_test(node)
        if value is not None:
            return ast.literal_eval(value)
    raise AssertionError(f'setup.py has no node that {node_test.__doc__}')


def _mim_names(node):
    """assigns MIM_FILES"""
    if isinstance(node, ast.Assign) and any(
            getattr(t, 'id', None) == 'MIM_FILES' for t in node.targets):
        return node.value


def _find_packages_keyword(name):
    def test(node):
        if isinstance(node, ast.Call) and getattr(
                node.func, 'id', None) == 'find_packages':
            return next((k.value for k in node.keywords if k.arg == name),
                        ast.Constant(()))
    test.__doc__ = f'calls find_packages (its {name!r})'
    return test


def wheel_files():
    """The files setup.py puts in the wheel, found as it finds them but
    without building: the .py files of ``find_packages`` with setup.py's own
    ``include`` / ``exclude``, and ``MIM_FILES`` copied into
    ``mm_instdisc/.mim`` (less ``__pycache__`` and ``*.pyc``)."""
    import setuptools
    packages = setuptools.find_packages(
        where=ROOT, include=_setup_py_literal(_find_packages_keyword('include')),
        exclude=_setup_py_literal(_find_packages_keyword('exclude')))
    found = {}  # path in the wheel -> path in the checkout
    for package in packages:
        folder = osp.join(ROOT, *package.split('.'))
        for path in glob.glob(osp.join(folder, '*.py')):
            found[osp.relpath(path, ROOT)] = path
    for name in _setup_py_literal(_mim_names):
        src = osp.join(ROOT, name)
        paths = [src] if osp.isfile(src) else glob.glob(
            osp.join(src, '**', '*'), recursive=True)
        for path in paths:
            if osp.isfile(path) and '__pycache__' not in path \
                    and not path.endswith('.pyc'):
                found[osp.join('mm_instdisc', '.mim',
                               osp.relpath(path, ROOT))] = path
    return packages, found


def _digest(path):
    import hashlib
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_wheel_carries_no_research_code():
    """Nothing of benchmarks/ ships: no ``benchmarks`` package, no benchmark
    script (by name, nor by content under another name), no copy of
    ``benchmarks.lib``; tools/benchmarks/ ships its shell launchers only."""
    packages, found = wheel_files()
    # the list is the real one: the package and its shipped tools are in it
    assert 'mm_instdisc.datasets' in packages, packages
    for shipped in ('mm_instdisc/datasets/composed_coco.py',
                    'mm_instdisc/.mim/tools/train.py',
                    'mm_instdisc/.mim/tools/benchmarks/mmdetection/'
                    'dist_train_fpn.sh', 'mm_instdisc/.mim/metafile.yml'):
        assert shipped in found, shipped
    assert not [p for p in packages if 'benchmarks' in p.split('.')], packages
    research = {_digest(p): osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'benchmarks', '**', '*.py'), recursive=True)
        if osp.getsize(p)}
    scripts = {name + '.py' for name in BENCHMARK_SCRIPTS}
    bad = [rel for rel, path in found.items()
           if osp.basename(rel) in scripts or rel.endswith('_benchmark.py')
           or (rel.startswith('mm_instdisc/.mim/tools/benchmarks/')
               and rel.endswith('.py'))
           or _digest(path) in research]
    assert not bad, bad
