#!/bin/bash
# session 16, call 4: the Gluon walk backward keeping one state in GROUP tokens: tests, then training img/s
# (graphs) against the Triton walk backward, GROUP 4 and 2, alternated processes; the kernel profile of a step
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
T0=$(date +%s)
timeout 170 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "gluon_walk_backward or walk_backward_segments or matches_reference_gpu or segments_gpu or recompute_joined_gpu or bc_input_gpu" 2>&1 | grep -v "^$" | tail -25 | tee -a $OUT/gpu4.txt
echo "tests took $(( $(date +%s) - T0 )) s" | tee -a $OUT/gpu4.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
for rep in 1 2; do
  for kind in triton g4 g2; do
    [ $rep = 2 ] && [ $kind = g2 ] && continue
    w=auto; [ $kind = triton ] && w=triton
    echo "== rep $rep $kind" | tee -a $OUT/gpu4.txt
    g=${kind#g}; [ $kind = triton ] && g=4; GROUP=$g VIM_FUSED_BACKWARD_WALK=$w timeout 100 python3 .scratch/s16/bench_group.py $B --out $OUT/train_bwd_${kind}_r$rep.json 2>&1 | grep "Vim\|Error\|error\|arn" | tee -a $OUT/gpu4.txt
  done
done
timeout 80 python3 .scratch/s16/prof_train.py 2>&1 | grep -v Warn | head -12 | tee $OUT/prof_train_g4.txt
