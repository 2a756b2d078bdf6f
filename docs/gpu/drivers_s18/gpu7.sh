#!/bin/bash
# session 18, call 7: at the final defaults, two Gluon-file variants (docs/gpu/s18/): the walk backward's prologue
# issuing four summary pieces' loads at once (session 17's next_prologue.diff), and the summaries kernel with softplus's
# log as the polynomial (it waits on the MIO queue: MUFU and shared-memory reads), each and both. Vim-Ti training from
# CUDA graphs, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu7.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
bash docs/gpu/s18/make_variants.sh  # the gluon_<v>.py files (committed as diffs; they were files when this ran)
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in base prologue segpoly prologue_segpoly prologue_segpoly segpoly prologue base; do
  echo "== $v" | tee -a $OUT/gpu7.txt
  E=$([ $v = base ] || echo GLUON_FILE=docs/gpu/s18/gluon_$v.py)
  env $E timeout 55 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu7.txt
done
