#!/bin/bash
# session 17, call 3: the stall reasons of the Gluon walk backward, its summaries and the conv backward (ncu: every
# smsp__average_warps_issue_stalled_* ratio, a warp's cycles in each state per issued instruction) in a 1024^2
# batch-8 step at the default settings; the register cap lost (call 2), so occupancy is not what bounds the walk
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 ncu --clock-control none --profile-from-start off \
  -k regex:'_scan_bwd_walk_gluon_kernel|_scan_bwd_seg_gluon_kernel|_conv_bwd_pre_kernel|_conv_bwd_x_kernel' -c 4 \
  --metrics regex:'smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$',regex:'sm__pipe_.*_cycles_active\.avg\.pct_of_peak_sustained_active$',smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_shared_st.sum,smsp__inst_executed_op_global_st.sum,smsp__inst_executed_op_global_ld.sum,smsp__inst_executed_op_global_red.sum,smsp__inst_executed_op_global_atom.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,smsp__inst_executed.sum \
  python3 docs/gpu/s17/ncu_step.py > $OUT/ncu_stalls_s17.txt 2>&1; echo "ncu rc $?" | tee -a $OUT/gpu3.txt
