#!/bin/bash
# session 9, call 1: conv + x_proj kernel: GPU tests, tile sweep, model A/B
mkdir -p /tmp/site && tar -xJf .ops/ops.tar.xz -C /tmp/site || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
T="64:32:4:2 64:32:4:3 64:32:4:1 64:64:8:2 128:32:8:2 64:64:4:2 32:64:4:2 128:64:8:2 32:32:2:2 128:32:4:2 32:128:4:2 64:128:8:2"
timeout 120 python3 tools/fused_tile_sweep.py --batch 64 --skip-sweep --skip-profile --xproj-tiles $T 2>&1 | tee $OUT/xproj_sweep_b64.txt | grep -v Warn
timeout 60 python3 tools/fused_tile_sweep.py --batch 16 --skip-sweep --skip-profile --xproj-tiles $T 2>&1 | tee $OUT/xproj_sweep_b16.txt | grep -v Warn
timeout 200 python3 -m pytest -q -x tests/ops/test_fused.py -k "conv_xproj or joined_gpu or forward_kinds_gpu or matches_reference_gpu" -p no:cacheprovider 2>&1 | tail -4 | tee $OUT/gpu_tests.txt
timeout 200 python3 .scratch/ab_env.py 2>&1 | tee $OUT/ab_env.txt
