#!/usr/bin/env bash
# Fine-tune a C4 detector (Mask R-CNN R50-C4) on a self-supervised backbone:
# res2-res4 (model.backbone) and res5 (model.roi_head.shared_head) both come
# from PRETRAIN's backbone.* weights.
# Usage: bash tools/benchmarks/mmdetection/dist_train_c4.sh CONFIG PRETRAIN GPUS [det_train.py args...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG PRETRAIN GPUS [det_train.py args...]" >&2; exit 2
fi
CONFIG=$1
PRETRAIN=$2
GPUS=$3
if [ ! -f "$PRETRAIN" ]; then
  echo "error: PRETRAIN checkpoint '$PRETRAIN' not found" >&2; exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
source "$BENCH_DIR/../../_env.sh"

"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$BENCH_DIR/../../det_train.py" \
    "$CONFIG" \
    --launcher pytorch \
    --cfg-options model.backbone.init_cfg.type=Pretrained \
    model.backbone.init_cfg.checkpoint="$PRETRAIN" \
    model.backbone.init_cfg.prefix="backbone." \
    model.roi_head.shared_head.init_cfg.type=Pretrained \
    model.roi_head.shared_head.init_cfg.checkpoint="$PRETRAIN" \
    model.roi_head.shared_head.init_cfg.prefix="backbone." \
    ${@:4}
