#!/bin/bash
# session 19, call 1: the walk backward with a channel's states over 2 lanes (GLUON_BWD_SPLIT; 8 states a thread,
# 16 channels a one-warp program). GPU tests of the split, then Vim-Ti training from CUDA graphs: SPLIT 1 (the
# package) against SPLIT 2 at register caps 208 (the compiler's own count: 9 programs an SM), 168 (12) and 128 (16)
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "bwd_split or gluon_walk_backward_gpu" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu1.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in 1:0 2:168 2:128 2:208 2:208 2:128 2:168 1:0; do
  echo "== SPLIT:MAXREG $v" | tee -a $OUT/gpu1.txt
  SPLIT=${v%:*} MAXREG=${v#*:} timeout 60 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v/:/_}_$RANDOM.json \
    2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu1.txt
done
