#!/bin/bash
# session 18, call 8: _sum_states rewritten with a helper over tuples (_chain) instead of 16 written-out terms (same
# operations and order of additions; compiled for sm_90 with Triton 3.6: the same counts, another schedule). GPU tests of
# the sums, then Vim-Ti training from CUDA graphs: the written-out form (gluon_unrolled.py) against the package's
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu8.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
bash docs/gpu/s18/make_variants.sh
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "sum_chains or gluon_walk_backward_gpu" 2>&1 | grep -v "^$" | tail -3 | tee -a $OUT/gpu8.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in unrolled package package unrolled; do
  echo "== $v" | tee -a $OUT/gpu8.txt
  E=$([ $v = package ] || echo GLUON_FILE=docs/gpu/s18/gluon_$v.py)
  env $E timeout 55 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu8.txt
done
