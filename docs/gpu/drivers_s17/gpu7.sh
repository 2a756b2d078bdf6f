#!/bin/bash
# session 17, call 7: the z gradient's sum in the conv backward's second kernel, and the backward's softplus on MUFU.
# 1) GPU tests (fused against the reference, joined mixer, summaries in pieces, Gluon walk backward, conv); 2) Vim-Ti
# training from CUDA graphs at 1024^2 batch 8: default / DZ=sep / BWD_POLY=0, then reversed; 3) Vim-Ti and DeiT-Ti +
# SDPA in the same processes at the defaults (224 / 1024 / 1248)
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu7.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 130 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "matches_reference_gpu or joined_gpu or summary_pieces or gluon_walk_backward_gpu or conv_backward" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu7.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 --train-batch-sizes 1024:8 --no-progress --cuda-graph-train"
for v in base DZ=sep BWD_POLY=0 BWD_POLY=0 DZ=sep base; do
  echo "== $v" | tee -a $OUT/gpu7.txt
  env $([ $v = base ] || echo $v) timeout 40 python3 docs/gpu/s17/bench_knobs.py $B --out $OUT/train_${v/=/_}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu7.txt
done
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
timeout 100 python3 tools/benchmark.py $B --out $OUT/train_graph_final_s17_call7.json 2>&1 | grep "^|" | tee -a $OUT/gpu7.txt
