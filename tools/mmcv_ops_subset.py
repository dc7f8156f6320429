"""Trim an unpacked mmcv 2.x source tree to the compiled ops you need.

    python tools/mmcv_ops_subset.py SRC_DIR --ops nms,roi_align

Building mmcv 2.1.0 with all of its ops takes about 14 minutes on 2 cores;
mmdet's two-stage detectors (Faster / Mask R-CNN with FPN, on the CPU) call
two of them: ``nms`` (RPN proposals, test-time NMS) and ``roi_align`` (the
RoI extractor). Everything else mm_instdisc uses (mmengine, mmpretrain,
mmcv's transforms and cnn layers) is pure Python. tools/setup.sh calls this
before ``pip wheel`` so that a fresh set-up compiles only those files (about
a minute) unless ``MM_INSTDISC_MMCV_OPS=all`` asks for every op.

What it changes in SRC_DIR:

* removes the op sources under ``mmcv/ops/csrc/pytorch`` (and ``cpu/``) of the
  ops not asked for; ``pybind.cpp`` and ``info.cpp`` stay;
* drops the ``m.def`` bindings in ``pybind.cpp`` whose C++ function is no
  longer compiled (they would be undefined symbols at import);
* makes ``mmcv.utils.ext_loader.load_ext`` bind each op that was not built to
  a function raising ``NotImplementedError`` that names the op and says how
  to build it, instead of failing ``import mmcv.ops`` (every mmdet model file
  imports ``mmcv.ops``, whichever ops it calls).

Only mmcv's CPU build (``CppExtension``) is supported: a CUDA build binds
every kernel in ``cudabind.cpp``, so with a GPU set-up build all ops.
Standard library only: it runs before anything is installed.
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys

KEEP_ALWAYS = ('pybind', 'info')
MISSING_OP = '''
def _op_not_built(name):
    def _missing(*args, **kwargs):
        raise NotImplementedError(
            f"mmcv op '{name}' was not compiled: this mmcv wheel was built "
            "with MM_INSTDISC_MMCV_OPS={built} (tools/setup.sh builds only "
            "the ops mmdet's two-stage detectors use). Rebuild with every "
            "op: MM_INSTDISC_MMCV_OPS=all bash tools/setup.sh")
    _missing.__name__ = name
    return _missing

'''


def _op_name(path):
    stem = osp.splitext(osp.basename(path))[0]
    return stem[:-4] if stem.endswith('_cpu') else stem


def op_sources(src):
    csrc = osp.join(src, 'mmcv/ops/csrc/pytorch')
    if not osp.isfile(osp.join(csrc, 'pybind.cpp')):
        raise SystemExit(f'{src}: not an mmcv source tree (no '
                         'mmcv/ops/csrc/pytorch/pybind.cpp)')
    return csrc, (glob.glob(osp.join(csrc, '*.cpp')) +
                  glob.glob(osp.join(csrc, 'cpu/*.cpp')))


def available_ops(src):
    _, files = op_sources(src)
    return sorted({_op_name(f) for f in files} - set(KEEP_ALWAYS))


def _module_body(text):
    start = text.index('PYBIND11_MODULE(')
    open_brace = text.index('{', start)
    close_brace = text.rindex('}')
    return open_brace + 1, close_brace


def _statements(body):
    """Top-level ``;``-terminated statements of the module body (string
    literals may hold ``;``)."""
    out, cur, in_str, prev = [], [], False, ''
    for ch in body:
        cur.append(ch)
        if ch == '"' and prev != '\\':
            in_str = not in_str
        elif ch == ';' and not in_str:
            out.append(''.join(cur))
            cur = []
        prev = ch
    tail = ''.join(cur)
    return out, tail


def trim_pybind(pybind_path, kept_text):
    """Drop the bindings whose function no compiled file defines; returns
    the names of the dropped bindings."""
    with open(pybind_path) as f:
        text = f.read()
    lo, hi = _module_body(text)
    statements, tail = _statements(text[lo:hi])
    kept, dropped = [], []
    for st in statements:
        m = re.search(r'&\s*(\w+)', st)
        if m is None:  # not a plain binding: keep it
            kept.append(st)
            continue
        fn = m.group(1)
        # a definition at the start of a line: return type, name, '('
        if re.search(rf'^[A-Za-z_][\w:<>, *&]*\b{fn}\s*\(', kept_text,
                     flags=re.M):
            kept.append(st)
        else:
            dropped.append(re.search(r'm\.def\(\s*"(\w+)"', st).group(1)
                           if 'm.def' in st else fn)
    with open(pybind_path, 'w') as f:
        f.write(text[:lo] + ''.join(kept) + tail + text[hi:])
    return dropped


def patch_ext_loader(src, built):
    path = osp.join(src, 'mmcv/utils/ext_loader.py')
    with open(path) as f:
        text = f.read()
    old = ("        for fun in funcs:\n"
           "            assert hasattr(ext, fun), f'{fun} miss in module "
           "{name}'\n")
    if old not in text:
        raise SystemExit(f'{path}: load_ext is not the one mmcv 2.x ships; '
                         'cannot patch it')
    new = ("        for fun in funcs:\n"
           "            if not hasattr(ext, fun):\n"
           "                setattr(ext, fun, _op_not_built(fun))\n")
    text = text.replace(old, new)
    anchor = "if torch.__version__ != 'parrots':\n"
    text = text.replace(anchor,
                        MISSING_OP.replace('{built}', built) + anchor, 1)
    with open(path, 'w') as f:
        f.write(text)


def trim(src, ops):
    csrc, files = op_sources(src)
    unknown = sorted(set(ops) - set(available_ops(src)))
    if unknown:
        raise SystemExit(f'unknown mmcv ops {unknown}; this source tree has '
                         f'{available_ops(src)}')
    keep = set(ops) | set(KEEP_ALWAYS)
    kept_text = []
    for f in files:
        if _op_name(f) == 'pybind':  # declares every op: not a definition
            continue
        if _op_name(f) in keep:
            with open(f) as fh:
                kept_text.append(fh.read())
        else:
            os.remove(f)
    dropped = trim_pybind(osp.join(csrc, 'pybind.cpp'), '\n'.join(kept_text))
    patch_ext_loader(src, ','.join(sorted(ops)))
    return dropped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='unpacked mmcv source tree (has setup.py)')
    p.add_argument('--ops',
                   help="comma-separated op sources to keep (e.g. "
                   "'nms,roi_align'), or 'all' to change nothing")
    p.add_argument('--list', action='store_true',
                   help='print the ops this source tree has and exit')
    args = p.parse_args(argv)
    if args.list:
        print(' '.join(available_ops(args.src)))
        return 0
    if not args.ops:
        p.error('--ops is required (or --list)')
    if args.ops == 'all':
        return 0
    ops = [o.strip() for o in args.ops.split(',') if o.strip()]
    dropped = trim(args.src, ops)
    print(f'mmcv ops kept: {",".join(ops)} '
          f'({len(dropped)} bindings of other ops dropped)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
