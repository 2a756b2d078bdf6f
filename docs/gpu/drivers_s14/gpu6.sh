#!/bin/bash
# session 14, call 6: cuda_graph_train (training forward + backward from graphs): GPU tests, then eager against graphs
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 95 python3 -m pytest -q -p no:cacheprovider -rs --tb=short tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -25 | tee $OUT/gpu_tests_s14_call6.txt
timeout 70 python3 .scratch/s14/train_graph_bench.py 2>&1 | grep -v Warn | tail -8 | tee $OUT/train_graph_bench_s14.txt
