#!/bin/bash
# session 14, call 3 (two GPUs): the fused ops' device guard on cuda:1 (tests); conv workspace peaks (fp32 det row)
nvidia-smi -L | tee $OUT/gpu3_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs --tb=short tests/ops/test_device_guard.py tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -25 | tee $OUT/gpu_tests_s14_call3.txt
timeout 60 python3 .scratch/s14/conv_peak.py 2>&1 | tee $OUT/conv_peak_s14.txt
