#!/bin/bash
# session 17, call 6: the walk backward's summaries in pieces (GLUON_BWD_SUMMARY_PIECES). 1) GPU tests (pieces,
# Gluon walk backward, conv, cut); 2) Vim-Ti training from CUDA graphs at 1, 2, 4 pieces, then 4, 2, 1; 3) at the
# fastest: Vim-Ti and DeiT-Ti + SDPA in the same processes (224 / 1024 / 1248), and the kernel profile of a step
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu6.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf --tb=short tests/ops/test_fused.py -k \
  "summary_pieces or gluon_walk_backward_gpu or conv_backward or bwd_segments or residency" 2>&1 | grep -v "^$" | tail -4 | tee -a $OUT/gpu6.txt
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for p in 1 2 4 4 2 1; do
  echo "== PIECES=$p" | tee -a $OUT/gpu6.txt
  PIECES=$p timeout 50 python3 docs/gpu/s17/bench_pieces.py $B --out $OUT/train_pieces${p}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | sed "s/^/P$p /" | tee -a $OUT/gpu6.txt
done
best=$(grep "^P[0-9]* | Vim-Ti (fused) | bf16 | train | 1024" $OUT/gpu6.txt | awk -F'|' '{split($1, a, " "); s[a[1]] += $7; n[a[1]]++} END {for (k in s) print s[k] / n[k], k}' | sort -rn | head -1 | awk '{print substr($2, 2)}')
echo "best PIECES=$best" | tee -a $OUT/gpu6.txt
B="--device cuda:0 --models vim_tiny deit_tiny --vim-backends fused --attn sdpa --dtypes bf16 --modes train \
--resolutions 224 1024 1248 --train-batch-sizes 224:128 1024:8 1248:4 --no-progress --cuda-graph-train"
PIECES=$best timeout 100 python3 docs/gpu/s17/bench_pieces.py $B --out $OUT/train_graph_final_s17.json 2>&1 | grep "^|" | tee -a $OUT/gpu6.txt
PIECES=$best PROFILE=1 timeout 80 python3 docs/gpu/s17/bench_pieces.py 2>&1 | grep -v Warn | tee $OUT/prof_train_final_s17.txt
