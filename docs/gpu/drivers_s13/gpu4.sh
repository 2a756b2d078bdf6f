#!/bin/bash
# session 13, call 4: FMA-pipe exps in the Gluon walks (GPU tests, A/B), state-pass pieces beside segment 0
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4_s13.txt
which nsys ncu 2>&1 | tee -a $OUT/gpu4_s13.txt
export PYTHONUNBUFFERED=1
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/ops/test_fused.py -k "gluon_forward_small or gluon_forward_matches or (forward_kinds_gpu and gluon and not float16) or segments_gpu" 2>&1 | grep -v "^$" | tail -4 | tee $OUT/gpu_tests_s13_call4.txt
ab() { env "$@" timeout 55 python3 .scratch/s13/ab_fma.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_fma_s13_call4.txt; }
ab FMA_S=0 HPIECES=4
ab FMA_S=2 HPIECES=4
ab FMA_S=1 HPIECES=4
ab FMA_S=2 HPIECES=1
ab FMA_S=0 HPIECES=4
ab FMA_S=2 FMA_O=1 HPIECES=4
ab FMA_S=2 HPIECES=4
