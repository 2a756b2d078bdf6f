#!/bin/bash
# session 16, call 5: the GPU tests of the Gluon walk backward (GROUP 4), then the reference parity of the walk backward
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 140 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k "gluon_walk_backward or walk_backward_segments" 2>&1 | grep -v "^$" | tail -14 | tee -a $OUT/gpu5.txt
timeout 130 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k "(matches_reference_gpu and walk) or recompute_joined_gpu or bc_input_gpu" 2>&1 | grep -v "^$" | tail -14 | tee -a $OUT/gpu5.txt
