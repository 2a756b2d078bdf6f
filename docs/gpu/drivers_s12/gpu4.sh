#!/bin/bash
# session 12, call 4: head segment on/off over more cuts (default cut 2, 4, 8 segments), alternated twice
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
ab() { ROWS=1248:16,1024:8,768:16,512:32,1248:32,1024:4 timeout 80 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call4.txt; }
for i in 1 2; do HEAD=0 ab; HEAD=1 ab; done
