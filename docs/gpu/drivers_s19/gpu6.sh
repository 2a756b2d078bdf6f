#!/bin/bash
# session 19, call 6: GPU tests at the final defaults (B and C read in place in training, du in place, the norm
# backward's rows): the fused op's parity with the reference and between its paths, the in-place B / C paths, the
# norm and the mixer
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 300 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused_norm.py tests/ops/test_fused.py \
  tests/ops/test_device_guard.py -k "norm or bc_ or du_in_place or fused_matches_reference_gpu or joined_gpu or \
mixer_fused or device" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu6.txt
