#!/bin/bash
# session 13, call 11: cuda_graph=True inference: GPU tests, then eager against graphed img/s
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu11_s13.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 90 python3 -m pytest -q -x -p no:cacheprovider tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -25 | tee $OUT/gpu_tests_s13_call11.txt
timeout 150 python3 .scratch/s13/graphed_bench.py 2>&1 | grep -v Warn | tee $OUT/graphed_bench_s13.txt
