#!/bin/bash
# session 17, call 1 (carry [".whl"]): 1) the fused op's GPU tests with the session-16 wave-filling cut and the
# strengthened Gluon-walk-backward test; 2) ncu of the backward's kernels in a 1024^2 batch-8 step (what bounds the
# walk backward: issue slots or stalls); 3) the kernel profile of that step; 4) same-run training rows, Vim-Ti and
# DeiT-Ti + SDPA, from CUDA graphs
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "gpu or walk_backward or segments" 2>&1 | grep -v "^$" | tail -20 | tee -a $OUT/gpu1.txt
timeout 130 ncu --clock-control none --profile-from-start off \
  -k regex:'_scan_bwd_walk_gluon_kernel|_scan_bwd_seg_gluon_kernel|_conv_bwd_pre_kernel|_conv_bwd_x_kernel' -c 4 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section ComputeWorkloadAnalysis --section InstructionStats --section MemoryWorkloadAnalysis \
  python3 docs/gpu/s17/ncu_step.py > $OUT/ncu_bwd_s17.txt 2>&1; echo "ncu rc $?" | tee -a $OUT/gpu1.txt
timeout 90 python3 docs/gpu/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_s17.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
timeout 100 python3 tools/benchmark.py $B --cuda-graph-train --out $OUT/train_graph_s17.json 2>&1 | grep "^|" | tee -a $OUT/gpu1.txt
