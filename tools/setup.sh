#!/usr/bin/env bash
# One-command, idempotent set-up for mm_instdisc on a fresh Linux machine (Python 3.11).
#
#   bash tools/setup.sh            # venv in ./.venv + full OpenMMLab stack + Fashion-MNIST
#
# What it does (each step is skipped when already done):
#   1. creates ./.venv (git-ignored) with Python 3.11;
#   2. installs torch 2.14.1 / torchvision 0.29.1 and the pure-Python stack (requirements/tested.txt, the exact tested set);
#   3. builds mmcv 2.1.0 from the PyPI sdist ONCE with the compiled ops mmdet's two-stage detectors use
#      on the CPU (nms, roi_align: about a minute on 2 cores; MM_INSTDISC_MMCV_OPS=all builds every op,
#      about 7-14 minutes) and caches the wheel in $MM_INSTDISC_CACHE (default ~/.cache/mm_instdisc),
#      so later runs take seconds; a cached all-ops wheel is used whatever MM_INSTDISC_MMCV_OPS says;
#   4. installs mm_instdisc itself in editable mode;
#   5. prepares Fashion-MNIST (the default data set) under ./data/fashion_mnist.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MM_INSTDISC_CACHE:-$HOME/.cache/mm_instdisc}"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
MMCV_VERSION=2.1.0
# the compiled ops to build: mmdet's Faster / Mask R-CNN call nms and roi_align on the CPU; 'all' = every op
MMCV_OPS="${MM_INSTDISC_MMCV_OPS:-nms,roi_align}"

say() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$CACHE/wheels"

# ---------------------------------------------------------------- 1. venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)
"$VPY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "mm_instdisc needs Python 3.11, $VPY is $("$VPY" --version)" >&2; exit 1; }

# ---------------------------------------------------------------- 2. torch + stack
stamp="$VENV/.mm_instdisc_deps"
req_hash="$( (cat "$ROOT/requirements/tested.txt" "$ROOT/tools/setup.sh" "$ROOT/tools/mmcv_ops_subset.py"; echo "$MMCV_OPS") \
  | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$req_hash" ]; then
  say "installing torch 2.14.1 + torchvision 0.29.1 and build tools"
  "${PIP[@]}" install -q 'pip>=24' 'setuptools>=77,<81' wheel ninja psutil
  "${PIP[@]}" install -q torch==2.14.1 torchvision==0.29.1

  # ------------------------------------------------------------ 3. mmcv with ops
  if [ "$MMCV_OPS" != all ] && "$VPY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    # a CUDA build binds every kernel (cudabind.cpp): it cannot leave ops out
    say "a GPU is visible: building every mmcv op (MM_INSTDISC_MMCV_OPS=all)"
    MMCV_OPS=all
  fi
  # an all-ops wheel (cached by earlier versions of this script, or asked for) serves any ops list
  wheel="$(ls "$CACHE"/wheels/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)"
  if [ "$MMCV_OPS" = all ]; then
    wheel_dir="$CACHE/wheels"
  else
    wheel_dir="$CACHE/wheels/ops-${MMCV_OPS//,/+}"
    [ -n "$wheel" ] || wheel="$(ls "$wheel_dir"/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)"
  fi
  if [ -z "$wheel" ]; then
    say "building mmcv ${MMCV_VERSION} with compiled ops: ${MMCV_OPS} (once; about a minute on 2 cores for" \
        "nms,roi_align, 7-14 minutes for all)"
    build="$(mktemp -d)"
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==${MMCV_VERSION}" -d "$build"
    tar -xzf "$build"/mmcv-${MMCV_VERSION}.tar.gz -C "$build"
    src="$build/mmcv-${MMCV_VERSION}"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    "$VPY" "$ROOT/tools/mmcv_ops_subset.py" "$src" --ops "$MMCV_OPS"
    # Keep Python's optimisation flags (a bare CFLAGS=-g0 would build the ops at -O0), drop debug info.
    pycflags="$("$VPY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")')"
    mkdir -p "$wheel_dir"
    ( cd "$src" && CFLAGS="$pycflags -g0" CXXFLAGS="-O2 -g0" MMCV_WITH_OPS=1 FORCE_CUDA=0 \
        MAX_JOBS="$(nproc)" "${PIP[@]}" wheel -q --no-deps --no-build-isolation . -w "$wheel_dir" )
    rm -rf "$build"
    wheel="$(ls "$wheel_dir"/mmcv-${MMCV_VERSION}-*.whl | head -n1)"
    say "cached $wheel"
  fi
  say "installing the OpenMMLab stack (mmcv from $wheel)"
  "${PIP[@]}" install -q "$wheel"
  "${PIP[@]}" install -q -r "$ROOT/requirements/tested.txt"
  echo "$req_hash" > "$stamp"
else
  say "dependencies already installed ($VENV)"
fi

# ---------------------------------------------------------------- 4. the package
# Checked from / : run from the checkout, Python would find mm_instdisc on the
# current directory and the package would never be installed into the venv.
if ! (cd / && "$VPY" -c 'import mm_instdisc, os, sys; sys.exit(0 if os.path.dirname(mm_instdisc.__file__).startswith(sys.argv[1]) else 1)' "$ROOT") 2>/dev/null; then
  say "installing mm_instdisc (editable)"
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
fi

# ---------------------------------------------------------------- 5. Fashion-MNIST
"$VPY" "$ROOT/tools/dataset_converters/prepare_fashion_mnist.py" --out "$ROOT/data/fashion_mnist" \
  --cache "$CACHE"

say "checking the installation (from /, so that the checkout is not on sys.path)"
(cd / && "$VPY" - "$ROOT" <<'PY'
import os, sys
import torch, mmengine, mmcv, mmpretrain, mmdet, lightly
from mmcv.ops import nms, RoIAlign  # the compiled ops detection uses must run
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
feat = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(
    torch.ones(1, 1, 8, 8), torch.tensor([[0., 0., 0., 4., 4.]]))
assert torch.allclose(feat, torch.ones(1, 1, 2, 2)), feat
import mm_instdisc
assert os.path.dirname(mm_instdisc.__file__).startswith(sys.argv[1]), mm_instdisc.__file__
print(f'torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops nms, roi_align ok), '
      f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, lightly {lightly.__version__}, '
      f'mm_instdisc from {os.path.dirname(mm_instdisc.__file__)}')
PY
)
say "ready: activate with 'source .venv/bin/activate'"
