#!/bin/bash
# session 18, call 6: ncu of the walk backward and its summaries in a 1024^2 batch-8 step at the final defaults: stall
# reasons (the metrics of session 17's call 3), instructions, issue activity and duration
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 ncu --clock-control none --profile-from-start off \
  -k regex:'_scan_bwd_walk_gluon_kernel|_scan_bwd_seg_gluon_kernel' -c 2 \
  --metrics regex:'smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$',regex:'sm__pipe_.*_cycles_active\.avg\.pct_of_peak_sustained_active$',smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__warps_active.avg.per_cycle_active,gpu__time_duration.sum,launch__registers_per_thread,smsp__inst_executed_op_local_ld.sum,smsp__inst_executed_op_local_st.sum \
  python3 docs/gpu/s17/ncu_step.py > $OUT/ncu_s18.txt 2>&1; echo "ncu rc $?" | tee -a $OUT/gpu6.txt
grep -E "_kernel|duration|registers|inst_executed|issue_active|warps_active|stalled_(wait|short|long|not_sel|selected|mio|dispatch|math)|pipe_(fma|xu|alu|fmaheavy)_cycles" $OUT/ncu_s18.txt | tee -a $OUT/gpu6.txt
