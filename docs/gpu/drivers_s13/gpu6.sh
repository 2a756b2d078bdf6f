#!/bin/bash
# session 13, call 6: the cut with one piece a segment in the state pass: segment 0 beside it for cuts up to 9, other targets
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6_s13.txt
export PYTHONUNBUFFERED=1
ab() { env "$@" timeout 50 python3 .scratch/s13/ab_cut.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_cut_s13_call6.txt; }
ab HEADMAX=5
ab HEADMAX=9
ab HEADMAX=9 TARGET=1920
ab HEADMAX=9 TARGET=2304
ab HEADMAX=9 TARGET=1152
ab HEADMAX=5
