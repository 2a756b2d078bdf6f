#!/bin/bash
# session 13, call 7: segment 0 beside the state pass for cuts of 8 at batches 2-8; GPU tests; final graph rows
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu7_s13.txt
export PYTHONUNBUFFERED=1
ab() { env "$@" ROWS=1024:4,1248:4,1024:2,768:8 timeout 45 python3 .scratch/s13/ab_cut.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_cut_s13_call7.txt; }
ab HEADMAX=5
ab HEADMAX=9
ab HEADMAX=5
ab HEADMAX=9
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/ops/test_fused.py -k "segments_gpu or model_fused_inference or forward_segments or segmented_walk" 2>&1 | grep -v "^$" | tail -3 | tee $OUT/gpu_tests_s13_call7.txt
timeout 120 python3 tools/benchmark.py --device cuda:0 --dtypes bf16 --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused --resolutions 1024 1248 --batch-sizes 1024:16 1248:8 --cuda-graph --out $OUT/benchmark_graph_s13.json 2>&1 | grep -v Warn | tail -8 | tee $OUT/benchmark_graph_s13.txt
