#!/bin/bash
# session 18, call 2: 1) GPU tests of the sum chains (forward and walk backward); 2) Vim-Ti training from CUDA graphs:
# the kernels of 46af6cd (old), old + the backward's sums as 4 chains (old_c4, gluon_old_chains.py), the new walk
# backward at 4 chains (c4), and c4 with the forward's sum as 2 chains (c4f2), alternated; 3) Vim-Ti inference from
# CUDA graphs with the forward's sum as 0 / 2 / 4 chains, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu2.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
bash docs/gpu/s18/make_variants.sh  # the gluon_<v>.py files (committed as diffs; they were files when this ran)
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k "sum_chains" 2>&1 | grep -v "^$" | tail -3 | tee -a $OUT/gpu2.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in old old_c4 c4 c4f2 c4f2 c4 old_c4 old; do
  echo "== $v" | tee -a $OUT/gpu2.txt
  case $v in old) E="GLUON_FILE=docs/gpu/s18/gluon_46af6cd.py";; old_c4) E="GLUON_FILE=docs/gpu/s18/gluon_old_chains.py CHAINS=4";;
    c4) E="CHAINS=4";; c4f2) E="CHAINS=4 FCHAINS=2";; esac
  env $E timeout 55 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu2.txt
done
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes infer \
--resolutions 224 1024 1248 --batch-sizes 224:128 1024:16 1248:8 --no-progress --cuda-graph"
for v in 0 2 4 4 2 0; do
  echo "== infer FCHAINS=$v" | tee -a $OUT/gpu2.txt
  FCHAINS=$v timeout 50 python3 docs/gpu/s18/bench_share.py $B --out $OUT/infer_f${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu2.txt
done
