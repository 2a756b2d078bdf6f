#!/bin/bash
# session 19, call 3: where the training step's device-to-device copies and fp32 adds come from (profiler stacks);
# the residual-add RMSNorm backward's rows a program and warps
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 docs/gpu/s19/find_memcpy.py 2>&1 | grep -v Warn | tee -a $OUT/gpu3.txt
timeout 120 python3 docs/gpu/s19/bench_norm.py 2>&1 | tee -a $OUT/gpu3.txt
