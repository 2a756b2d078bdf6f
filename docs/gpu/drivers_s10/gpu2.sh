#!/bin/bash
# session 10, call 2: the Gluon walks' softplus on the staged dt tile (GPU tests; A/B against HEAD's package,
# a channel's states on 1 / 2 / 4 lanes)
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -x tests/ops/test_fused.py -k "forward_kinds_gpu or small_and_odd or gluon_forward_matches or segments_gpu or mixer_inference_gpu" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests_s10_call2.txt
timeout 100 python3 .scratch/s10/ab_split.py .scratch/base10 2>&1 | grep "img/s\| b\|Error" | tee $OUT/ab_split_s10.txt
timeout 160 python3 .scratch/s10/ab_split.py . 32:1536 16:1536 16:3072 8:3072 2>&1 | grep " b\|Error" | tee -a $OUT/ab_split_s10.txt
timeout 80 python3 .scratch/s10/ab_split.py .scratch/base10 2>&1 | grep " b\|Error" | tee -a $OUT/ab_split_s10.txt
