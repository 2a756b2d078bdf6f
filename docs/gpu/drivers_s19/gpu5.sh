#!/bin/bash
# session 19, call 5: training reads B and C in place (bf16) under the Gluon walks. GPU tests; Vim-Ti training from CUDA
# graphs, the package before it (.scratch/s19/base: git archive of the commit before) against the working tree,
# alternated; then at the working tree, Vim-Ti and DeiT-Ti + SDPA training (twice) and inference (once) from CUDA
# graphs in the same processes, and the kernel profile of a 1024^2 batch-8 step
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu5.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused_norm.py tests/ops/test_fused.py -k \
  "norm or bc_ or fused_matches_reference_gpu or recompute_joined_gpu or gluon_walk_backward_gpu" 2>&1 | grep -v "^$" | tail -3 | tee -a $OUT/gpu5.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
ROOT=$PWD
for v in base new new base; do
  echo "== $v" | tee -a $OUT/gpu5.txt
  D=$([ $v = base ] && echo .scratch/s19/base || echo .)
  (cd $D && timeout 80 python3 $ROOT/docs/gpu/s18/bench_share.py $B --out $OUT/ab_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu5.txt)
done
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
for i in 1 2; do
  timeout 110 python3 tools/benchmark.py $B --out $OUT/train_graph_s19_$i.json 2>&1 | grep "^|" | tee -a $OUT/gpu5.txt
done
timeout 110 python3 tools/benchmark.py --device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa \
  --dtypes bf16 --modes infer --resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --no-progress \
  --cuda-graph --out $OUT/infer_graph_s19.json 2>&1 | grep "^|" | tee -a $OUT/gpu5.txt
timeout 100 python3 docs/gpu/s16/prof_train.py 2>&1 | grep -v Warn | tee $OUT/prof_train_s19.txt
