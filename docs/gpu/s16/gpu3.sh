#!/bin/bash
# session 16, call 3: the Gluon walk backward on a GPU: the fused tests (forward + backward against the reference), then
# training img/s with the Triton walk backward (VIM_FUSED_BACKWARD_WALK=triton) and the Gluon one (auto), alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
T0=$(date +%s)
timeout 260 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py 2>&1 | grep -v "^$" | tail -25 | tee -a $OUT/gpu3.txt
echo "tests took $(( $(date +%s) - T0 )) s" | tee -a $OUT/gpu3.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
for rep in 1 2; do
  for kind in triton auto; do
    echo "== rep $rep VIM_FUSED_BACKWARD_WALK=$kind" | tee -a $OUT/gpu3.txt
    VIM_FUSED_BACKWARD_WALK=$kind timeout 100 python3 tools/benchmark.py $B --out $OUT/train_graph_bwd_${kind}_r$rep.json 2>&1 | grep "^|\|Error\|error\|arn" | tee -a $OUT/gpu3.txt
  done
done
timeout 100 python3 .scratch/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_gluon_bwd.txt
