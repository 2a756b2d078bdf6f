#!/bin/bash
# session 9, call 2: training steps from CUDA graphs (stock, fused, DeiT-Ti SDPA), eager in the same call
mkdir -p /tmp/site && tar -xJf .ops/ops.tar.xz -C /tmp/site || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
git log --oneline -1 2>/dev/null
timeout 150 python3 -m pytest -q tests/tools/test_benchmark_cpu.py -k "graph" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests_graph_train.txt
C="--device cuda:0 --models vim_tiny deit_tiny --vim-backends mamba_ssm fused --attn sdpa --dtypes bf16 --modes train --resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
timeout 200 python3 tools/benchmark.py $C --cuda-graph-train --out $OUT/benchmark_train_graph_s9.json 2>&1 | grep -v Warn | tail -12
timeout 150 python3 tools/benchmark.py $C --out $OUT/benchmark_train_eager_s9.json 2>&1 | grep -v Warn | tail -12
