#!/bin/bash
# session 10, call 1: GPU tests of the CPU-only commits of session 9; register caps of the walks (A/B);
# training old (ee940bb) vs HEAD (A = -exp(A_log) in the prepared weights)
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 .scratch/s10/ab_nreg.py 2>&1 | grep -v Warn | tee $OUT/ab_nreg_s10.txt
for r in ".scratch/old10 75" ". 75" ".scratch/old10 45" ". 45"; do set -- $r; timeout $2 python3 .scratch/s10/train_ab.py $1 2>&1 | grep "img/s\|Error" | tee -a $OUT/train_ab_alog_s10.txt; done
timeout 130 python3 -m pytest -q tests/ops/test_fused.py -k "gpu or mixer or prepare" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests_s10_call1.txt
timeout 60 python3 -m pytest -q tests/tools/test_benchmark_cpu.py -k "graph" -p no:cacheprovider 2>&1 | tail -3 | tee -a $OUT/gpu_tests_s10_call1.txt
