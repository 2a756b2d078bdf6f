#!/bin/bash
# session 18, call 4: the fused op's GPU tests at the session's final defaults (GLUON_BWD_SUM_CHAINS = 4, decays from
# the second walk), in two parts that fit a call
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 250 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "gluon_walk_backward_gpu or sum_chains or summary_pieces or joined_gpu or conv_backward" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu4.txt
timeout 300 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "matches_reference_gpu or segments_gpu or bc_input_gpu" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu4.txt
