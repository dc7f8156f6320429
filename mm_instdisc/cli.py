"""Console scripts: ``mm-instdisc-train`` and friends run the shipped tools
(``tools/*.py`` in a checkout, ``mm_instdisc/.mim/tools`` in a wheel) with
the same arguments, from any working directory.

A CONFIG argument may also be a shipped config's name
(``npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist``, see
``mm_instdisc.list_configs``). Data: configs read their data below
``$MM_INSTDISC_DATA`` (default ``data`` in the working directory); when that
is unset and the working directory has no ``data/``, the checkout's ``data/``
(an editable install made by tools/setup.sh) is used.
"""
import os
import os.path as osp
import runpy
import sys

from mm_instdisc.configs import get_config, tool_path


def _resolve_config(argv):
    """argv[0] as a file, else as a shipped config name."""
    if argv and not argv[0].startswith('-') and not osp.isfile(argv[0]):
        try:
            argv[0] = get_config(argv[0])
        except FileNotFoundError:
            pass  # the tool's own error names the bad path
    return argv


def _default_data_root():
    if 'MM_INSTDISC_DATA' in os.environ or osp.isdir('data'):
        return
    checkout = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                        'data')
    if osp.isdir(checkout):
        os.environ['MM_INSTDISC_DATA'] = checkout


def _run(tool, takes_config=True):
    path = tool_path(tool)
    args = sys.argv[1:]
    if takes_config:
        args = _resolve_config(args)
    _default_data_root()
    sys.argv = [path] + args
    sys.path.insert(0, osp.dirname(path))  # the tools import their helpers
    runpy.run_path(path, run_name='__main__')


def train():
    _run('train.py')


def test():
    _run('test.py')


def knn_eval():
    _run('knn_eval.py')


def convert():
    _run('model_converters/selfsup_to_backbone.py', takes_config=False)


def make_fmnist_coco():
    _run('dataset_converters/make_fmnist_coco.py', takes_config=False)
