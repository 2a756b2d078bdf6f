#!/bin/bash
# session 14, call 1: session 13's fp32 tail and graph device guard on a GPU; y-sum split A/B; fresh b64 rows
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/models/test_cuda_graph.py tests/ops/test_fused.py -k "cuda_graph or gate_out or mixer_inference or model_fused_inference" 2>&1 | grep -v "^$" | tail -3 | tee $OUT/gpu_tests_s14_call1.txt
timeout 40 python3 tools/kernel_profile.py --dtype fp32 --img-size 512 --batch 1 --top 8 2>&1 | grep -v Warn | tee $OUT/kprof_fp32_512_b1_s14.txt
ROWS=fp32 timeout 50 python3 .scratch/s13/graphed_bench.py 2>&1 | grep -v Warn | tee $OUT/graphed_bench_fp32_s14.txt
ab() { env "$@" timeout 60 python3 .scratch/s14/ab_env.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_ytree_s14_call1.txt; }
ab; ab FB_GLUON_Y_TREE=2; ab; ab FB_GLUON_Y_TREE=2
timeout 120 python3 tools/benchmark.py --device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused --resolutions 1024 1248 --batch-sizes 64 --cuda-graph --out $OUT/benchmark_graph_b64_s14.json 2>&1 | grep -v Warn | tail -8 | tee $OUT/benchmark_graph_b64_s14.txt
