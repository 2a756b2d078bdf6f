#!/bin/bash
# session 17, call 2: the Gluon walk backward's register cap (ncu, call 1: 243 registers, 8 one-warp programs an SM,
# 1.94 warps a scheduler, issue slots 52% busy). Vim-Ti training from CUDA graphs at each cap / group; the cut
# follows the residency the cap allows (gluon_bwd_residency)
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu2.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in 0:4 168:4 144:4 128:4 168:2 128:2 128:4 144:4 168:4 0:4; do
  r=${v%%:*}; g=${v##*:}
  echo "== MAXREG=$r GROUP=$g" | tee -a $OUT/gpu2.txt
  MAXREG=$r GROUP=$g timeout 55 python3 docs/gpu/s17/bench_regs.py $B --out $OUT/train_reg${r}_g${g}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu2.txt
done
