#!/bin/bash
# session 19, call 4: x_proj's input gradient added into du in place (baddbmm_) and the norm backward's rows a program
# doubled. GPU tests; the norm backward at Vim-S / Vim-B widths; Vim-Ti training from CUDA graphs, the package of
# 330201e (.scratch/s19/base, git archive) against the working tree, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu4.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused_norm.py tests/ops/test_fused.py -k \
  "norm or du_in_place or fused_matches_reference_gpu or recompute_joined_gpu or mixer_fused" 2>&1 | grep -v "^$" | tail -3 | tee -a $OUT/gpu4.txt
timeout 60 python3 docs/gpu/s19/bench_norm.py 384 8,4 16,4 32,4 2>&1 | grep -v check | tee -a $OUT/gpu4.txt
timeout 60 python3 docs/gpu/s19/bench_norm.py 768 4,4 8,4 16,4 2>&1 | grep -v check | tee -a $OUT/gpu4.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
ROOT=$PWD
for v in base new new base; do
  echo "== $v" | tee -a $OUT/gpu4.txt
  D=$([ $v = base ] && echo .scratch/s19/base || echo .)
  (cd $D && timeout 80 python3 $ROOT/docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu4.txt)
done
