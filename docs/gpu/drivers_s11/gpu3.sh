#!/bin/bash
# session 11, call 3: dt_proj in the walk with the next group's mma beside the last step: GPU tests; img/s A/B
# against the tail-kernel commit (tail11), alternated processes; the same tree with VIM_FUSED_WALK_DT_PROJ=0
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q tests/ops/test_fused.py -k "dt_proj or tail or gate_out or out_parts or mixer_inference or keeps_no or gluon_forward_matches" -p no:cacheprovider 2>&1 | tail -8 | tee $OUT/gpu_tests_s11_call3.txt
for r in .scratch/tail11 . .scratch/tail11 .; do timeout 50 python3 .scratch/s11/ab_tail.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_dtwalk_mid_s11.txt; done
VIM_FUSED_WALK_DT_PROJ=0 timeout 50 python3 .scratch/s11/ab_tail.py . 2>&1 | grep " b\|Error" | sed 's/^/dtproj-off /' | tee -a $OUT/ab_dtwalk_mid_s11.txt
