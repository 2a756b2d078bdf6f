#!/bin/bash
# session 10, call 4: in_proj / out_proj cast once a call (not kept): GPU tests; img/s A/B against HEAD's package
# (graphs, alternated processes); then the final rows of fused Vim-Ti vs DeiT-Ti SDPA, without and with graphs
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 70 python3 -m pytest -q tests/ops/test_fused.py tests/layers -k "mixer or keeps_no or not_kept" -p no:cacheprovider 2>&1 | tail -2 | tee $OUT/gpu_tests_s10_call4.txt
for r in .scratch/base10 . .scratch/base10 .; do timeout 45 python3 .scratch/s10/ab_mem.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_cast_s10.txt; done
B="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused"
for g in "" "--cuda-graph"; do
  n=$([ -n "$g" ] && echo graph || echo eager)
  timeout 75 python3 tools/benchmark.py $B $g --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_${n}_s10.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
  timeout 75 python3 tools/benchmark.py $B $g --resolutions 1024 1248 --batch-sizes 64 --out $OUT/benchmark_${n}_b64_s10.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
done
