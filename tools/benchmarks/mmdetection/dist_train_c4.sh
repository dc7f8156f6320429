#!/usr/bin/env bash
# Fine-tune a C4 detector (Mask R-CNN R50-C4) on a self-supervised backbone:
# res2-res4 (model.backbone) and res5 (model.roi_head.shared_head) both come
# from PRETRAIN's backbone.* weights. Same launcher as dist_train_fpn.sh, plus
# the shared head's init_cfg (repeated --cfg-options are merged).
# Usage: bash tools/benchmarks/mmdetection/dist_train_c4.sh CONFIG PRETRAIN GPUS [det_train.py args...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG PRETRAIN GPUS [det_train.py args...]" >&2; exit 2
fi
exec bash "$(dirname "$0")/dist_train_fpn.sh" "$1" "$2" "$3" \
    --cfg-options model.roi_head.shared_head.init_cfg.type=Pretrained \
    model.roi_head.shared_head.init_cfg.checkpoint="$2" \
    model.roi_head.shared_head.init_cfg.prefix="backbone." \
    "${@:4}"
