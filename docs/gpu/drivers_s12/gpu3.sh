#!/bin/bash
# session 12, call 3: the side stream at high priority
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
python3 -c "import torch; print('priority range', torch.cuda.Stream.priority_range())" | tee -a $OUT/ab_head_s12_call3.txt
ab() { ROWS=1024:16,1248:8 timeout 50 python3 .scratch/s12/ab_head.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_head_s12_call3.txt; }
for i in 1 2; do HEAD=0 ab; ab; PRIO=-1 ab; PRIO=-5 ab; done
