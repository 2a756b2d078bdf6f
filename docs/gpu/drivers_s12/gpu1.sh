#!/bin/bash
# session 12, call 1: GPU tests of the head-segment change, then img/s A/B (HEAD=1 vs 0, alternated), sweeps
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q -x tests/ops/test_fused.py -k "segments_gpu or forward_kinds_gpu or small_and_odd or mixer_inference or model_fused" 2>&1 | tail -4 | tee $OUT/gpu_tests_s12_call1.txt
for i in 1 2; do for h in 0 1; do HEAD=$h timeout 60 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call1.txt; done; done
NOSIDE=1 timeout 60 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call1.txt
for t in 1152 1920; do TARGET=$t ROWS=1024:16,1248:8 timeout 60 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call1.txt; done
