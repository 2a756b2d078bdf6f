#!/bin/bash
# session 16, call 6: the walk backward's cut (Gluon walk, 8 programs an SM at 255 registers): the default 8 segments
# against 11 (1024^2 b8: 2112 programs = 2 waves of 132 x 8; 1248^2 b4: 1056 = 1 wave) and 16
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for s in 0 11 16 0 11; do
  echo "== BWDSEG=$s" | tee -a $OUT/gpu6.txt
  BWDSEG=$s timeout 60 python3 .scratch/s16/bench_bwdseg.py $B --out $OUT/train_bwdseg_$s.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu6.txt
done
