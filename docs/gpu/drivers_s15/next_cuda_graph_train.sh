#!/bin/bash
# for the next GPU session (regenerated in session 15 on top of scan_recompute): the training-graph patch (v2: parameter aliases) on a GPU. Apply it first:
#   git apply docs/gpu/drivers_s15/cuda_graph_train_v2_s15.patch
# then run this with carry [".whl", ".scratch"] (docs/gpu/drivers_s14/train_graph_bench.py copied to .scratch/s14/)
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rfs --tb=short tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -40 | tee $OUT/gpu_tests_cuda_graph_train.txt
timeout 90 python3 .scratch/s14/train_graph_bench.py 2>&1 | grep -v Warn | tail -8 | tee $OUT/train_graph_bench.txt
