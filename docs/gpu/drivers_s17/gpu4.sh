#!/bin/bash
# session 17, call 4: prefetch in the Gluon backward (ncu, call 3: the summaries stall 2.5 cycles an instruction on
# global loads, the walk 0.31). 1) GPU tests: prefetch settings against each other, the Gluon walk backward,
# residency/cut; 2) Vim-Ti training from CUDA graphs with GLUON_BWD_PREFETCH = (summaries, walk) 00 / 10 / 11,
# alternated; 3) ncu stalls of the summaries with the new default
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "prefetch or gluon_walk_backward_gpu or residency or bwd_segments" 2>&1 | grep -v "^$" | tail -8 | tee -a $OUT/gpu4.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for p in 00 10 11 00 10 11; do
  echo "== PREFETCH=$p" | tee -a $OUT/gpu4.txt
  PREFETCH=$p timeout 55 python3 docs/gpu/s17/bench_prefetch.py $B --out $OUT/train_pf${p}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu4.txt
done
timeout 60 ncu --clock-control none --profile-from-start off -k regex:'_scan_bwd_seg_gluon_kernel|_scan_bwd_walk_gluon' -c 2 \
  --metrics regex:'smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$',gpu__time_duration.sum,launch__registers_per_thread \
  python3 docs/gpu/s17/ncu_step.py > $OUT/ncu_seg_prefetch_s17.txt 2>&1; echo "ncu rc $?" | tee -a $OUT/gpu4.txt
