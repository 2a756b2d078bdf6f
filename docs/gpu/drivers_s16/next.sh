#!/bin/bash
# for the next GPU session (one H200; prepare .whl with tools/prepare_device_wheels.sh, carry [".whl"]):
# 1) the GPU tests of the fused op, the Gluon walk backward with the wave-filling cut included (session 16 ran them
#    before that cut: at bwd_segments=None, E = 384, L = 4097, batch 2 it now takes 15 segments instead of 8);
# 2) one run of the training rows, Vim-Ti and DeiT-Ti + SDPA in the same processes, from CUDA graphs and eager (peak
#    memory), for same-run ratios at the session-16 code (the README's session-16 training numbers span two calls);
# 3) the kernel profile of a 1024^2, batch-8 step.
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/next_s16.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 280 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "gpu or walk_backward or segments" 2>&1 | grep -v "^$" | tail -20 | tee -a $OUT/next_s16.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
timeout 100 python3 tools/benchmark.py $B --cuda-graph-train --out $OUT/train_graph_next.json 2>&1 | grep "^|" | tee -a $OUT/next_s16.txt
timeout 100 python3 tools/benchmark.py $B --out $OUT/train_eager_next.json 2>&1 | grep "^|" | tee -a $OUT/next_s16.txt
timeout 100 python3 docs/gpu/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_next.txt
