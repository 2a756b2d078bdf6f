#!/bin/bash
# session 13, call 3: per-launch walk times (profiler events), and the state pass's pieces with segment 0 beside it
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3_s13.txt
export PYTHONUNBUFFERED=1
timeout 90 python3 .scratch/s13/walk_trace.py 2>&1 | grep -v "Warn\|warn" | tee -a $OUT/walk_trace_s13.txt
PIECES=1 ROWS=1024:16,1248:8 timeout 60 python3 .scratch/s13/walk_trace.py 2>&1 | grep -v "Warn\|warn" | tee -a $OUT/walk_trace_s13.txt
ab() { env "$@" timeout 50 python3 .scratch/s13/ab_pieces.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_pieces_s13_call3.txt; }
ab PIECES=4
ab PIECES=1
ab PIECES=2
ab PIECES=8
ab PIECES=2 HEADMAX=9
ab PIECES=4 HEADMAX=9
ab PIECES=4
