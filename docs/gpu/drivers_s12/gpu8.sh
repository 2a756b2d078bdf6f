#!/bin/bash
# session 12, call 8: u and dt staged as 16-byte pieces (Gluon walk): GPU tests, then img/s against e10d6f0's package
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu8_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 75 python3 -m pytest -q -x -p no:cacheprovider tests/ops/test_fused.py -k "gluon_forward_small or gluon_forward_matches or (forward_kinds_gpu and gluon) or model_fused_inference_matches_reference_gpu or segments_gpu" 2>&1 | grep -v "^$" | tail -4 | tee $OUT/gpu_tests_s12_call8.txt
for r in .scratch/base12 . ; do ROWS=1024:16,1024:64,224:128 timeout 45 python3 .scratch/s12/ab_head.py $r 2>&1 | grep " b\|Error" | sed "s|^|$r |" | tee -a $OUT/ab_stage16_s12_call8.txt; done
