"""tools/mmcv_ops_subset.py trims an mmcv source tree to the ops asked for:
on a miniature tree laid out like mmcv 2.1.0's (op sources, pybind.cpp with
one binding per op, ext_loader.py), and, when the installed mmcv was built
by tools/setup.sh with a subset, on the real wheel."""
import importlib.util
import os
import textwrap

import pytest

from tests.helpers import ROOT

PYBIND = textwrap.dedent('''\
    #include "pytorch_cpp_helper.hpp"
    std::string get_compiler_version();
    Tensor nms(Tensor boxes, Tensor scores, float iou_threshold, int offset);
    void roi_align_forward(Tensor input, Tensor rois, Tensor output);
    void deform_conv_forward(Tensor input, Tensor weight);

    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
      m.def("get_compiler_version", &get_compiler_version, "version; x");
      m.def("nms", &nms, "nms (CPU/CUDA) ", py::arg("boxes"),
            py::arg("scores"), py::arg("iou_threshold"), py::arg("offset"));
      m.def("roi_align_forward", &roi_align_forward, "roi_align forward",
            py::arg("input"), py::arg("rois"), py::arg("output"));
      m.def("deform_conv_forward", &deform_conv_forward, "deform conv",
            py::arg("input"), py::arg("weight"));
    }
    ''')
EXT_LOADER = textwrap.dedent('''\
    import importlib

    import torch

    if torch.__version__ != 'parrots':

        def load_ext(name, funcs):
            ext = importlib.import_module('mmcv.' + name)
            for fun in funcs:
                assert hasattr(ext, fun), f'{fun} miss in module {name}'
            return ext
    ''')
SOURCES = {
    'info.cpp': 'std::string get_compiler_version() { return "gcc"; }\n',
    'nms.cpp': 'Tensor nms(Tensor boxes, Tensor scores, float iou_threshold,'
               ' int offset) {\n  return boxes;\n}\n',
    'cpu/nms.cpp': 'Tensor nms_cpu(Tensor boxes) { return boxes; }\n',
    'roi_align.cpp': 'void roi_align_forward(Tensor input, Tensor rois,\n'
                     '                       Tensor output) {}\n',
    'cpu/roi_align.cpp': 'void roi_align_forward_cpu() {}\n',
    'deform_conv.cpp': 'void deform_conv_forward(Tensor input, '
                       'Tensor weight) {}\n',
    'cpu/deform_conv.cpp': 'void deform_conv_cpu() {}\n',
    'cpu/bbox_overlaps_cpu.cpp': 'void bbox_overlaps_cpu() {}\n',
}


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'mmcv_ops_subset', os.path.join(ROOT, 'tools/mmcv_ops_subset.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tree(tmp_path):
    csrc = tmp_path / 'mmcv/ops/csrc/pytorch'
    (csrc / 'cpu').mkdir(parents=True)
    (csrc / 'pybind.cpp').write_text(PYBIND)
    for name, text in SOURCES.items():
        (csrc / name).write_text(text)
    (tmp_path / 'mmcv/utils').mkdir(parents=True)
    (tmp_path / 'mmcv/utils/ext_loader.py').write_text(EXT_LOADER)
    return tmp_path


def test_lists_ops_and_keeps_only_those_asked_for(tree):
    tool = load_tool()
    assert tool.available_ops(str(tree)) == [
        'bbox_overlaps', 'deform_conv', 'nms', 'roi_align']
    assert tool.main([str(tree), '--ops', 'nms,roi_align']) == 0
    csrc = tree / 'mmcv/ops/csrc/pytorch'
    left = sorted(str(p.relative_to(csrc)) for p in csrc.rglob('*.cpp'))
    assert left == ['cpu/nms.cpp', 'cpu/roi_align.cpp', 'info.cpp',
                    'nms.cpp', 'pybind.cpp', 'roi_align.cpp']
    pybind = (csrc / 'pybind.cpp').read_text()
    body = pybind[pybind.index('PYBIND11_MODULE'):]
    assert 'm.def("nms"' in body and 'm.def("roi_align_forward"' in body
    assert 'm.def("get_compiler_version"' in body  # ';' in its docstring
    assert 'deform_conv' not in body
    # declarations above the module stay (unused declarations link fine)
    assert 'void deform_conv_forward(' in pybind
    assert body.rstrip().endswith('}')


def test_ops_not_built_raise_a_clear_error(tree, monkeypatch):
    import sys
    import types
    tool = load_tool()
    tool.trim(str(tree), ['nms'])
    ext = types.ModuleType('mmcv._ext')
    ext.nms = lambda *a: 'built'
    monkeypatch.setitem(sys.modules, 'mmcv._ext', ext)
    monkeypatch.setitem(sys.modules, 'mmcv', types.ModuleType('mmcv'))
    spec = importlib.util.spec_from_file_location(
        'patched_ext_loader', tree / 'mmcv/utils/ext_loader.py')
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    got = loader.load_ext('_ext', ['nms', 'deform_conv_forward'])
    assert got.nms() == 'built'
    with pytest.raises(NotImplementedError,
                       match=r"'deform_conv_forward' was not compiled.*"
                       r"MM_INSTDISC_MMCV_OPS=nms\b.*"
                       r"MM_INSTDISC_MMCV_OPS=all bash tools/setup.sh"):
        got.deform_conv_forward(1, 2)


def test_unknown_op_and_foreign_tree_are_refused(tree, tmp_path_factory):
    tool = load_tool()
    with pytest.raises(SystemExit, match=r"unknown mmcv ops \['nmz'\]"):
        tool.trim(str(tree), ['nmz'])
    empty = tmp_path_factory.mktemp('not_mmcv')
    with pytest.raises(SystemExit, match='not an mmcv source tree'):
        tool.trim(str(empty), ['nms'])
    assert tool.main([str(tree), '--ops', 'all']) == 0  # changes nothing
    assert (tree / 'mmcv/ops/csrc/pytorch/deform_conv.cpp').exists()


def test_installed_mmcv_runs_the_detection_ops():
    """The ops Faster / Mask R-CNN call on the CPU run, whichever subset
    the installed wheel was built with."""
    torch = pytest.importorskip('torch')
    ops = pytest.importorskip('mmcv.ops')
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    _, keep = ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    feat = ops.RoIAlign((2, 2), 1.0, 2)(torch.arange(64.).view(1, 1, 8, 8),
                                        torch.tensor([[0., 0., 0., 4., 4.]]))
    # aligned=True shifts the RoI by half a pixel: bin (0, 0) averages the
    # samples at rows / columns 0 and 1 of the ramp 8y + x
    assert torch.allclose(feat, torch.tensor([[[[4.5, 6.5], [20.5, 22.5]]]]))
