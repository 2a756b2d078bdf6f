#!/bin/bash
# session 11, call 7 (H200): img/s A/B of session 10's package (base11) against the tail kernel (this tree), alternated; DeiT-Ti once
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
for r in .scratch/base11 . .scratch/base11 .; do timeout 45 python3 .scratch/s11/ab_tail.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_tail_base_h200_s11.txt; done
timeout 45 python3 .scratch/s11/ab_tail.py . --deit 2>&1 | grep " b\|Error" | tee -a $OUT/ab_tail_base_h200_s11.txt
