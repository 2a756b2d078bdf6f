#!/bin/bash
# session 13, call 5: state-pass pieces beside segment 0 (HEAD_STATE_PASS_PIECES 1 against 4), segment GPU tests
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5_s13.txt
export PYTHONUNBUFFERED=1
ab() { env "$@" timeout 70 python3 .scratch/s13/ab_hpieces.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_hpieces_s13_call5.txt; }
ab HPIECES=4
ab HPIECES=1
ab HPIECES=4
ab HPIECES=1
ab HPIECES=2
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/ops/test_fused.py -k "segments_gpu" 2>&1 | grep -v "^$" | tail -4 | tee $OUT/gpu_tests_s13_call5.txt
