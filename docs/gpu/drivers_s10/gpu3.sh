#!/bin/bash
# session 10, call 3: projection weights cast per call instead of kept (GPU tests; memory and img/s, HEAD's
# package vs the working tree, alternated processes; DeiT-Ti once)
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 90 python3 -m pytest -q tests/ops/test_fused.py tests/layers -k "mixer or keeps_no or not_kept" -p no:cacheprovider 2>&1 | tail -3 | tee $OUT/gpu_tests_s10_call3.txt
for r in .scratch/base10 . .scratch/base10 .; do timeout 80 python3 .scratch/s10/ab_mem.py $r 2>&1 | grep " b\|Error" | tee -a $OUT/ab_mem_s10.txt; done
timeout 60 python3 .scratch/s10/ab_mem.py . --deit 2>&1 | grep " b\|Error" | tee -a $OUT/ab_mem_s10.txt
