#!/bin/bash
# session 11, call 1: the one-kernel mixer tail: GPU tests, config sweep, img/s A/B against HEAD's package
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 120 python3 -m pytest -q tests/ops/test_fused.py -k "gate_out or mixer_inference or keeps_no" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests_s11_call1.txt
timeout 170 python3 .scratch/s11/tail_sweep.py 2>&1 | tee $OUT/tail_sweep_s11.txt | tail -45
T=$(cat /tmp/tail_best 2>/dev/null || echo 64,64,4,2)
for r in .scratch/base11 . .scratch/base11 .; do TAIL=$T timeout 45 python3 .scratch/s11/ab_tail.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_tail_s11.txt; done
timeout 45 python3 .scratch/s11/ab_tail.py . --deit 2>&1 | grep " b\|Error" | tee -a $OUT/ab_tail_s11.txt
