#!/bin/bash
# session 9, call 3: inference without autograd (fewer live activations): GPU tests, then old (ee940bb) vs new
# package with the same (new) benchmark tool, graph rows with the corrected peak memory, and eager rows
mkdir -p /tmp/site && tar -xJf .ops/ops.tar.xz -C /tmp/site || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python3 -m pytest -q tests/ops/test_fused.py tests/tools/test_benchmark_cpu.py -k "mixer or joined_gpu or forward_kinds_gpu or graph or segments_gpu" -p no:cacheprovider 2>&1 | tail -5 | tee $OUT/gpu_tests_s9_call3.txt
G="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --cuda-graph"
for tree in new old new; do
  if [ $tree = old ]; then T=.scratch/old9/tools/benchmark.py; else T=tools/benchmark.py; fi
  timeout 100 python3 $T $G --models vim_tiny --vim-backends fused --resolutions 1024 1248 --batch-sizes 64 --out $OUT/ab_${tree}_b64.json 2>&1 | grep "Vim-Ti\|Error" | sed "s/^/$tree /"
  timeout 100 python3 $T $G --models vim_tiny --vim-backends fused --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/ab_${tree}_small.json 2>&1 | grep "Vim-Ti\|Error" | sed "s/^/$tree /"
done
timeout 150 python3 tools/benchmark.py $G --models vim_tiny deit_tiny --vim-backends mamba_ssm fused --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_cuda_graph_s9.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
timeout 150 python3 tools/benchmark.py $G --models vim_tiny deit_tiny --vim-backends mamba_ssm fused --resolutions 1024 1248 --batch-sizes 64 --out $OUT/benchmark_cuda_graph_b64_s9.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
E="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer"
timeout 150 python3 tools/benchmark.py $E --models vim_tiny deit_tiny --vim-backends mamba_ssm fused --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_eager_s9.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
