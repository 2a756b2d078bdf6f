#!/bin/bash
# session 19, call 7: the conv backward's second kernel (which also sums dz since session 17) at other tiles alone, then
# Vim-Ti training from CUDA graphs with the fastest against the package's tile, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu7.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 120 python3 docs/gpu/s19/bench_conv_x.py 64,32,4 64,64,4 64,64,8 32,128,4 128,32,4 128,16,4 64,16,2 32,32,2 \
  16,128,4 2>&1 | tee -a $OUT/gpu7.txt
BEST=$(grep '^best' $OUT/gpu7.txt | awk '{print $2}')
BASE=$(python3 -c "from vim_backbone.ops import fused_bimamba as f; print(f'{f.CONV_BWD_BLOCK_E},{f.CONV_BWD_BLOCK_L},{f.CONV_BWD_NUM_WARPS}')")
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
if [ -n "$BEST" ] && [ "$BEST" != "$BASE" ]; then
  for v in $BASE $BEST $BEST $BASE; do
    echo "== CONV_X_TILE $v" | tee -a $OUT/gpu7.txt
    CONV_X_TILE=$v timeout 80 python3 docs/gpu/s18/bench_share.py $B --out $OUT/x_${v//,/_}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu7.txt
  done
fi
