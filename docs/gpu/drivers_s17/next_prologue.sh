#!/bin/bash
# for the next GPU session (after next.sh; carry [".whl"]): the walk backward's prologue with four summary pieces'
# loads issued at once (next_prologue.diff; compiled for sm_90 on the CPU machine: the main loop unchanged, 2256
# instructions) against the package's one dependent load a piece. Vim-Ti training from CUDA graphs, alternated.
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/next_prologue.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
cp vim_backbone/ops/fused_bimamba_gluon.py /tmp/gluon_prologue.py
patch /tmp/gluon_prologue.py < docs/gpu/drivers_s17/next_prologue.diff | tee -a $OUT/next_prologue.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in base prologue prologue base; do
  echo "== $v" | tee -a $OUT/next_prologue.txt
  GLUON_FILE=$([ $v = prologue ] && echo /tmp/gluon_prologue.py) timeout 55 python3 docs/gpu/drivers_s17/bench_gluon_file.py \
    $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/next_prologue.txt
done
