#!/bin/bash
# for the next GPU session (one H200; carry [".whl"], prepared with tools/prepare_device_wheels.sh):
# 1) the fused op's GPU tests at session 17's final defaults, in two parts that fit a call's limits (session 17 ran
#    them by groups, each group before the last default changed; call 8 ran the walk-backward group at the final ones);
# 2) Vim-Ti and DeiT-Ti + SDPA training in the same processes at the final defaults (the README's session-17 table
#    was taken with the backward's softplus polynomial, GLUON_BWD_SOFTPLUS_POLY = True);
# 3) the kernel profile of a 1024^2 batch-8 step.
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/next_s17.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 200 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "matches_reference_gpu or joined_gpu or segments_gpu or bc_input_gpu" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/next_s17.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
timeout 100 python3 tools/benchmark.py $B --out $OUT/train_graph_next.json 2>&1 | grep "^|" | tee -a $OUT/next_s17.txt
timeout 90 python3 docs/gpu/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_next.txt
