#!/bin/bash
# session 14, call 5: one run at aa768e5 of fused Vim-Ti/S against DeiT-Ti/S (naive and SDPA), bf16, inference and
# training; eager (peak memory) and from CUDA graphs (the GPU's time), with the Fig. 1 style plots
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --models vim_tiny vim_small deit_tiny deit_small --vim-backends fused --attn naive sdpa --dtypes bf16 --modes infer train --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
timeout 200 python3 tools/benchmark.py $B --out $OUT/benchmark_eager_s14.json --plot $OUT/benchmark_eager_s14.png 2>&1 | grep "^|\|rror" | tee $OUT/benchmark_eager_s14.txt
timeout 200 python3 tools/benchmark.py $B --cuda-graph --cuda-graph-train --out $OUT/benchmark_graph_s14.json --plot $OUT/benchmark_graph_s14.png 2>&1 | grep "^|\|rror" | tee $OUT/benchmark_graph_s14.txt
