#!/usr/bin/env bash
# Fine-tune an mmdet detector with an FPN on a self-supervised backbone.
# Usage: bash tools/benchmarks/mmdetection/dist_train_fpn.sh CONFIG PRETRAIN GPUS [det_train.py args...]
#   PRETRAIN: a self-supervised checkpoint of ours (backbone.* keys, loaded
#   with prefix 'backbone.'), or the output of
#   tools/model_converters/selfsup_to_backbone.py --out-prefix backbone.
# GPUS processes on this node (torchrun); without GPUs they run on the CPU.
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
    ${@:4}
