#!/bin/bash
# session 18, call 3: the new walk backward (decays from its second walk, sums as 4 chains) at GROUP 4 (255 registers,
# 8 programs an SM) against GROUP 2 (222 registers when compiled here: 9 an SM), uncapped and capped at 224 registers
# (then the cut counts 9 an SM), and GROUP 2 capped with gl.sum. Vim-Ti training from CUDA graphs, alternated
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu3.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
B="--device cuda:0 --models vim_tiny --vim-backends fused --dtypes bf16 --modes train \
--resolutions 1024 1248 --train-batch-sizes 1024:8 1248:4 --no-progress --cuda-graph-train"
for v in g4 g2 g2cap g2c0cap g2c0cap g2cap g2 g4; do
  echo "== $v" | tee -a $OUT/gpu3.txt
  case $v in g4) E="CHAINS=4 GROUP=4";; g2) E="CHAINS=4 GROUP=2";; g2cap) E="CHAINS=4 GROUP=2 MAXREG=224";;
    g2c0cap) E="CHAINS=0 GROUP=2 MAXREG=224";; esac
  env $E timeout 55 python3 docs/gpu/s18/bench_share.py $B --out $OUT/train_${v}_$RANDOM.json 2>&1 | grep "Vim\|Error\|error" | tee -a $OUT/gpu3.txt
done
python3 - <<'PY' | tee -a $OUT/gpu3.txt
import sys, os, torch
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
sms, regs, shared = fb._sm_resources(torch.device("cuda:0"))
for grp, cap in ((4, None), (2, None), (2, 224)):
    fb.GLUON_BWD_GROUP = grp
    sh = fb.gluon_bwd_shared_memory(32, 16, [2, 2, 2, 2])
    per = fb.gluon_bwd_residency(cap, sh, regs, shared)
    print("group", grp, "cap", cap, "per SM", per, "segments 1024^2 b8:", fb.gluon_bwd_segments(2 * 8 * 12, 4097, sms, per), "1248^2 b4:", fb.gluon_bwd_segments(2 * 4 * 12, 6085, sms, per))
PY
