#!/bin/bash
# session 18, call 1: the walk backward taking each token's decay, step and softplus derivative from its second walk
# (not recomputed), and its sums over the states as 1 / 2 / 4 chains. 1) GPU tests of the walk backward; 2) Vim-Ti
# training from CUDA graphs, 1024^2 batch 8 and 1248^2 batch 4: the kernels of 46af6cd (old) against the new ones
# at CHAINS 0 / 2 / 4, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu1.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
bash docs/gpu/s18/make_variants.sh  # the gluon_<v>.py files (committed as diffs; they were files when this ran)
python3 -c "import triton; print('triton', triton.__version__)" | tee -a $OUT/gpu1.txt
# as run: /tmp/gluon_old.py was 46af6cd's file with an unused CHAINS argument added to the walk backward (a sed); the
# rebuilt gluon_46af6cd.py has it (and one in the forward, which the package passes from call 2 on)
cp docs/gpu/s18/gluon_46af6cd.py /tmp/gluon_old.py
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "sum_chains or gluon_walk_backward_gpu or summary_pieces" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu1.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in old c0 c2 c4 c4 c2 c0 old; do
  echo "== $v" | tee -a $OUT/gpu1.txt
  case $v in old) E="GLUON_FILE=/tmp/gluon_old.py";; *) E="CHAINS=${v#c}";; esac
  env $E timeout 55 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu1.txt
done
