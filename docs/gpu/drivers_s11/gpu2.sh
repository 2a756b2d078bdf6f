#!/bin/bash
# session 11, call 2: dt_proj inside the Gluon walk (mma) + the tail kernel: GPU tests; img/s A/B against
# session 10's package (base11) and the tail-kernel commit (tail11), alternated processes
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 230 python3 -m pytest -q -x tests/ops/test_fused.py -k "dt_proj or tail or gate_out or out_parts or mixer_inference or keeps_no or gluon_forward_matches" -p no:cacheprovider 2>&1 | tail -15 | tee $OUT/gpu_tests_s11_call2.txt
for r in .scratch/base11 .scratch/tail11 . .scratch/tail11 .; do timeout 50 python3 .scratch/s11/ab_tail.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_dtwalk_s11.txt; done
timeout 50 python3 .scratch/s11/ab_tail.py . --deit 2>&1 | grep " b\|Error" | tee -a $OUT/ab_dtwalk_s11.txt
