#!/bin/bash
# session 19, call 2: the conv backward in one pass (_conv_bwd_kernel). GPU tests of the conv backward and the fused
# op's parity, the kernel alone against the two passes at several tiles, then Vim-Ti training from CUDA graphs
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu2.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "conv_backward or fused_matches_reference_gpu or fused_joined_gpu or recompute_joined_gpu" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu2.txt
timeout 150 python3 docs/gpu/s19/bench_conv.py 32,16,16,4 32,16,8,4 32,32,8,4 32,32,16,4 16,32,16,4 32,64,4,8 64,32,8,8 2>&1 | tee -a $OUT/gpu2.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in twopass 32,16,16,4 32,32,8,4 32,32,8,4 32,16,16,4 twopass; do
  echo "== $v" | tee -a $OUT/gpu2.txt
  if [ $v = twopass ]; then E="VIM_FUSED_CONV_BACKWARD=twopass"; else E="CONV_TILE=$v"; fi
  env $E timeout 60 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v//,/_}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu2.txt
done
