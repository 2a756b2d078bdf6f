#!/bin/bash
# for the next GPU session (one H200): scan_recompute on a GPU. Prepare .whl with tools/prepare_device_wheels.sh and
# run this with carry [".whl"]. 1) the GPU tests of the recompute paths; 2) Vim-Ti training, bf16, with and without
# --scan-recompute, each twice in alternated processes: eager (peak memory, host time) and from CUDA graphs (the GPU's
# time of a step), DeiT-Ti + SDPA in the same processes for the ratios.
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu_recompute.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short -k "recompute" tests/ops/test_fused.py \
  tests/models/test_vision_mamba.py 2>&1 | tail -15 | tee -a $OUT/gpu_recompute.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress"
for rep in 1 2; do
  for flag in "" "--scan-recompute"; do
    tag=r${rep}${flag:+_recompute}
    timeout 100 python3 tools/benchmark.py $B $flag --out $OUT/train_eager_$tag.json 2>&1 | grep "^|" | tee -a $OUT/gpu_recompute.txt
    timeout 100 python3 tools/benchmark.py $B $flag --cuda-graph-train --out $OUT/train_graph_$tag.json 2>&1 | grep "^|" | tee -a $OUT/gpu_recompute.txt
  done
done
