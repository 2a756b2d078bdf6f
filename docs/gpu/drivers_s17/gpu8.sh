#!/bin/bash
# session 17, call 8: GPU tests at the final defaults (the backward's softplus on MUFU, summaries in 2 pieces, the dz
# sum in the conv backward): the Gluon walk backward, the summaries in pieces, the walk backward against the reference
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu8.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 170 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "summary_pieces or gluon_walk_backward_gpu or (matches_reference_gpu and walk)" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu8.txt
