#!/bin/bash
# session 9, call 6: the benchmark's graph tests after the peak-memory test rewrite
export PYTHONUNBUFFERED=1
timeout 100 python3 -m pytest -q tests/tools/test_benchmark_cpu.py -k "graph" -p no:cacheprovider 2>&1 | grep -v Warn | grep "passed\|failed\|assert\|Error" | head -20 | tee $OUT/gpu_tests_s9_call6.txt
