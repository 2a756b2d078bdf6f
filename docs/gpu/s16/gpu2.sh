#!/bin/bash
# session 16, call 2: kernel profile of a training step (default / scan_recompute); the training-graph patch v2 on a GPU
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 .scratch/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_s16.txt
rm -rf /tmp/v2 && mkdir /tmp/v2 && cp -r vim_backbone tests tools docs pytest.ini setup.py /tmp/v2/ && mkdir -p /tmp/v2/.scratch/s14 && cp docs/gpu/drivers_s14/train_graph_bench.py /tmp/v2/.scratch/s14/
cd /tmp/v2 && (git apply docs/gpu/drivers_s15/cuda_graph_train_v2_s15.patch || patch -p1 < docs/gpu/drivers_s15/cuda_graph_train_v2_s15.patch) 2>&1 | tail -3
timeout 170 python3 -m pytest -q -p no:cacheprovider -rfs --tb=short tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -40 | tee $OUT/gpu_tests_cuda_graph_train_v2.txt
timeout 120 python3 .scratch/s14/train_graph_bench.py 2>&1 | grep -v Warn | tail -8 | tee $OUT/train_graph_bench_v2.txt
