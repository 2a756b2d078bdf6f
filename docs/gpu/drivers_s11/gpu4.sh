#!/bin/bash
# session 11, call 4: the next block's residual add + RMSNorm in the tail kernel (blocks chained): GPU tests;
# img/s A/B against the tail-kernel commit (tail11, 82cba65), alternated processes
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q tests/ops/test_fused.py tests/models -k "add_norm or gate_out or out_parts or mixer_inference or keeps_no or tail or chain" -p no:cacheprovider 2>&1 | tail -8 | tee $OUT/gpu_tests_s11_call4.txt
for r in .scratch/tail11 . .scratch/tail11 .; do timeout 50 python3 .scratch/s11/ab_tail.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_chain_s11.txt; done
