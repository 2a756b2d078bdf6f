#!/bin/bash
# session 12, call 6 (tree of 6109425): the tests call 5 did not reach (its 320 s limit), in collection order
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6_s12.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 340 python3 -m pytest -q -p no:cacheprovider $(cat .scratch/s12/rest_tests.txt) 2>&1 | grep -v "^$" | tail -15 > $OUT/gpu_tests_s12_call6.txt
tail -4 $OUT/gpu_tests_s12_call6.txt
