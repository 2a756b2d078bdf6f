#!/bin/bash
# session 11, call 6 (H200): the tail kernel's config sweep on this GPU; img/s of the best config against the default, alternated
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 170 python3 .scratch/s11/tail_sweep.py 2>&1 | tee $OUT/tail_sweep_h200_s11.txt | grep -v "^64,128\|^128,128\|failed" | tail -30
cp $OUT/tail_sweep_s11.json $OUT/tail_sweep_h200_s11.json 2>/dev/null; rm -f $OUT/tail_sweep_s11.json
T=$(cat /tmp/tail_best 2>/dev/null || echo 64,32,4,3)
for t in 64,32,4,3 $T 64,32,4,3 $T; do TAIL=$t timeout 45 python3 .scratch/s11/ab_tail.py . 2>&1 | grep " b\|Error" | tee -a $OUT/ab_tail_h200_s11.txt; done
