#!/bin/bash
# session 17, call 5 (carry [".whl", ".scratch/s17/old_kernels.py"]): the conv backward's first step with the sums
# over tokens taken once a program (ncu, call 3: 181 us a layer, stalls on shared memory and barriers of the per-tile
# sums). 1) conv tests on the GPU; 2) the conv backward alone, session-16 kernel against tile settings; 3) Vim-Ti
# training from CUDA graphs, session-16 kernel against the fastest setting, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 100 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k "conv" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu5.txt
timeout 150 python3 docs/gpu/s17/bench_conv.py .scratch/s17/old_kernels.py 2>&1 | tee -a $OUT/gpu5.txt
best=$(grep "^best" $OUT/gpu5.txt | tail -1 | cut -d' ' -f2)
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for c in old $best old $best; do
  echo "== CONV_PRE=$c" | tee -a $OUT/gpu5.txt
  CONV_PRE=$c OLD_KERNELS=.scratch/s17/old_kernels.py timeout 55 python3 docs/gpu/s17/bench_conv_train.py $B \
    --out $OUT/train_conv_${c//,/_}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu5.txt
done
