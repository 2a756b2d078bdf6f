#!/bin/bash
# session 12, call 5 (tree of 6109425): the fused GPU tests and tests/layers; HEAD=0/1 A/B; the README graph rows at batch 16 / 8
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 320 python3 -m pytest -q tests/ops/test_fused.py tests/layers -p no:cacheprovider 2>&1 | grep -v "^$" | tail -15 > $OUT/gpu_tests_s12_call5.txt
tail -3 $OUT/gpu_tests_s12_call5.txt
for h in 0 1; do HEAD=$h ROWS=1024:16,1248:8,1024:32,1024:8,1024:64 timeout 60 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call5.txt; done
timeout 90 python3 tools/benchmark.py --device cuda:0 --dtypes bf16 --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused --resolutions 1024 1248 --batch-sizes 1024:16 1248:8 --cuda-graph --out $OUT/benchmark_graph_s12.json 2>&1 | tail -8
