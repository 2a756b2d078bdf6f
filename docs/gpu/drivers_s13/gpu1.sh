#!/bin/bash
# session 13, call 1: the batch cut into K chunks on K streams (whole model, blocks interleaved)
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1_s13.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
run() { env "$@" timeout 60 python3 .scratch/s13/ab_streams.py 2>&1 | grep " b\|Error" | tee -a $OUT/ab_streams_s13_call1.txt; }
run K=1
run K=2
run K=2 TARGET=768

run K=4 TARGET=384

run K=1
run K=2 TARGET=768
