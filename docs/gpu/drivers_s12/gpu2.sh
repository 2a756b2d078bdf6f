#!/bin/bash
# session 12, call 2: GPU tests of the shorter head segment; img/s sweep of its length and the cut, alternated with HEAD=0
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu2_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 120 python3 -m pytest -q tests/ops/test_fused.py -k "segments_gpu or gluon_forward_small" 2>&1 | tail -3 | tee $OUT/gpu_tests_s12_call2.txt
ab() { timeout 50 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call2.txt; }
for i in 1 2; do HEAD=0 ab; FRAC=0.5 ab; FRAC=0.3 ab; done
FRAC=0.7 ab; FRAC=0.5 TARGET=1920 ab; FRAC=0.3 TARGET=1152 ab; FRAC=0.5 TARGET=1344 ab; FRAC=0.15 ab
