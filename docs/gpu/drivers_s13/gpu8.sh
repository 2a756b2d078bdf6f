#!/bin/bash
# session 13, call 8 (H100): the committed cut rule against the old one (segment 0 beside the state pass, pieces), GPU tests
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu8_s13.txt
export PYTHONUNBUFFERED=1
ab() { env "$@" ROWS=1024:16,1024:32,1024:8,1248:8,1024:4 timeout 55 python3 .scratch/s13/ab_cut.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_cut_h100_s13_call8.txt; }
ab HPIECES=4 HEADMAX=5
ab
ab HPIECES=4 HEADMAX=5
ab
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/ops/test_fused.py -k "segments_gpu or model_fused_inference or forward_segments or walk_cut or gluon_forward_matches" 2>&1 | grep -v "^$" | tail -3 | tee $OUT/gpu_tests_s13_call8.txt
