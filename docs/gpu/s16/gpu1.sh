#!/bin/bash
# session 16, call 1: scan_recompute on the GPU (tests, then training img/s and peak, alternated processes)
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
git rev-parse HEAD 2>/dev/null | tee -a $OUT/gpu1.txt
T0=$(date +%s)
timeout 170 python3 -m pytest -q -p no:cacheprovider -rf --tb=short -k "recompute" tests/ops/test_fused.py \
  tests/models/test_vision_mamba.py 2>&1 | tail -15 | tee -a $OUT/gpu1.txt
echo "tests took $(( $(date +%s) - T0 )) s" | tee -a $OUT/gpu1.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
for rep in 1 2; do
  for flag in "" "--scan-recompute"; do
    tag=r${rep}${flag:+_recompute}
    for g in "" "--cuda-graph-train"; do
      T0=$(date +%s)
      echo "== rep $rep flag '$flag' graph '$g'" | tee -a $OUT/gpu1.txt
      timeout 120 python3 tools/benchmark.py $B $flag $g --out $OUT/train${g:+_graph}_$tag.json 2>&1 | grep "^|\|Error\|error" | tee -a $OUT/gpu1.txt
      echo "took $(( $(date +%s) - T0 )) s" | tee -a $OUT/gpu1.txt
    done
  done
done
