#!/bin/bash
# session 11, call 8: whole-model parity of the fused inference path on the GPU (new test), the tail's tests, tests/layers
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 170 python3 -m pytest -q tests/ops/test_fused.py tests/layers -k "model_fused or gate_out or mixer_inference or keeps_no or tail or not fused" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests_s11_call8.txt
