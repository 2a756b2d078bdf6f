#!/bin/bash
# session 11, call 5: final rows at the tail-kernel commit: fused Vim-Ti vs DeiT-Ti SDPA, without and with graphs; GPU tests of the tail
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused"
for g in "" "--cuda-graph"; do
  n=$([ -n "$g" ] && echo graph || echo eager)
  timeout 90 python3 tools/benchmark.py $B $g --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_${n}_s11.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
  timeout 90 python3 tools/benchmark.py $B $g --resolutions 1024 1248 --batch-sizes 64 --out $OUT/benchmark_${n}_b64_s11.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
done
timeout 150 python3 -m pytest -q tests/ops/test_fused.py -k "gate_out or out_parts or mixer_inference or keeps_no or tail" -p no:cacheprovider 2>&1 | tail -3 | tee $OUT/gpu_tests_s11_call5.txt
