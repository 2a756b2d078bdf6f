#!/bin/bash
# session 18, call 5: at the final defaults, Vim-Ti and DeiT-Ti + SDPA training from CUDA graphs in the same processes
# (224 / 1024 / 1248), twice; the kernel profile of a 1024^2 batch-8 step
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
for i in 1 2; do
  timeout 110 python3 tools/benchmark.py $B --out $OUT/train_graph_s18_$i.json 2>&1 | grep "^|" | tee -a $OUT/gpu5.txt
done
timeout 100 python3 docs/gpu/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_s18.txt
