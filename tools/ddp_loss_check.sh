#!/usr/bin/env bash
# One GPU vs DDP on GPUS cards with the same global batch, plus a second one-GPU seed for the noise level.
#
#   bash tools/ddp_loss_check.sh [GPUS=2] [ITERS=200] [OUT=work_dirs/ddp_check]
#
# Trains CONFIG (default the toy Mask R-CNN, global batch 4) three times, logging the loss every
# iteration: 1 GPU seed 0 (reference), 1 GPU seed 1, GPUS GPUs seed 0 with batch 4 / GPUS each; then
# tools/compare_loss_curves.py prints per-window means and z scores (OUT/compare.json).
# EXTRA_CFG adds --cfg-options to all three runs.
set -euo pipefail
cd "$(dirname "$0")/.."
GPUS=${1:-2}
ITERS=${2:-200}
OUT=${3:-work_dirs/ddp_check}
CONFIG=${CONFIG:-configs/det/mask-rcnn_vim-t-tiny_toy-coco.py}
GLOBAL_BATCH=${GLOBAL_BATCH:-4}
PY=${PYTHON:-python}
[ -f data/toy_coco/annotations/train.json ] || $PY tools/make_toy_coco.py
common=(${EXTRA_CFG:-} train_cfg.max_iters=$ITERS train_cfg.val_interval=$ITERS default_hooks.logger.interval=1
        log_processor.window_size=1 default_hooks.checkpoint.interval=$ITERS)
$PY tools/train.py "$CONFIG" --work-dir "$OUT/1gpu_seed0" \
    --cfg-options "${common[@]}" train_dataloader.batch_size=$GLOBAL_BATCH randomness.seed=0
$PY tools/train.py "$CONFIG" --work-dir "$OUT/1gpu_seed1" \
    --cfg-options "${common[@]}" train_dataloader.batch_size=$GLOBAL_BATCH randomness.seed=1
PYTHON=$PY bash tools/dist_train.sh "$CONFIG" "$GPUS" --work-dir "$OUT/${GPUS}gpu_seed0" \
    --cfg-options "${common[@]}" train_dataloader.batch_size=$((GLOBAL_BATCH / GPUS)) randomness.seed=0
$PY tools/compare_loss_curves.py "1gpu=$OUT/1gpu_seed0" "1gpu_seed1=$OUT/1gpu_seed1" \
    "${GPUS}gpu=$OUT/${GPUS}gpu_seed0" --out "$OUT/compare.json"
