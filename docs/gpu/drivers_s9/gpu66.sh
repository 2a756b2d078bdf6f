#!/bin/bash
# session 9, call 7 (an H100): fused Vim-Ti vs DeiT-Ti SDPA at f9bf206, without and with graphs
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
B="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused"
for g in "" "--cuda-graph"; do
  n=$([ -n "$g" ] && echo graph || echo eager)
  timeout 100 python3 tools/benchmark.py $B $g --resolutions 1024 1248 --batch-sizes 64 --out $OUT/benchmark_${n}_b64_f9bf206_h100.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
  timeout 100 python3 tools/benchmark.py $B $g --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_${n}_f9bf206_h100.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
done
