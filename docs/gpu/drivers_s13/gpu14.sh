#!/bin/bash
# session 13, call 14: the fp32 tail unfused: GPU tests of the tail and the inference paths, fp32 kernel profile and img/s
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu14_s13.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/ops/test_fused.py -k "gate_out or mixer_inference or model_fused_inference" 2>&1 | grep -v "^$" | tail -2 | tee $OUT/gpu_tests_s13_call14.txt
timeout 30 python3 tools/kernel_profile.py --dtype fp32 --img-size 512 --batch 1 --top 8 2>&1 | grep -v Warn | tee $OUT/kprof_fp32_512_b1_unfused_s13.txt
ROWS=fp32 timeout 40 python3 .scratch/s13/graphed_bench.py 2>&1 | grep -v Warn | tee $OUT/graphed_bench_fp32_s13.txt
