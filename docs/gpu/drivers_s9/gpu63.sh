#!/bin/bash
# session 9, call 4: z made after the walks; GPU tests; fused vs DeiT-Ti memory and img/s (eager and graphs);
# then mmcv's CUDA ops built in the background for call 5
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 120 python3 -m pytest -q tests/ops/test_fused.py -k "mixer" -p no:cacheprovider 2>&1 | tail -3 | tee $OUT/gpu_tests_s9_call4.txt
timeout 100 python3 -m pytest -q -x tests/tools/test_benchmark_cpu.py -k "graph" -p no:cacheprovider 2>&1 | grep -v Warn | grep -A25 "Error\|assert" | head -40 | tee -a $OUT/gpu_tests_s9_call4.txt
B="--device cuda:0 --dtypes bf16 --no-progress --attn sdpa --modes infer --models vim_tiny deit_tiny --vim-backends fused"
for g in "" "--cuda-graph"; do
  n=$([ -n "$g" ] && echo graph || echo eager)
  timeout 100 python3 tools/benchmark.py $B $g --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --out $OUT/benchmark_${n}_s9b.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
  timeout 100 python3 tools/benchmark.py $B $g --resolutions 1024 1248 --batch-sizes 64 --out $OUT/benchmark_${n}_b64_s9b.json 2>&1 | grep "Vim-Ti\|DeiT-Ti\|Error"
done
setsid nohup bash tools/install_cuda_ops.sh --only mmcv --sdist-dir .sdist > /tmp/mmcv_build.log 2>&1 < /dev/null &
sleep 5; cat /tmp/mmcv_build.log
