#!/bin/bash
# session 13, call 2: kernel profiles at HEAD, conv tiles and x_proj forms
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu2_s13.txt
export PYTHONUNBUFFERED=1
for rb in 1024:16 1248:8 1024:64; do timeout 60 python3 tools/kernel_profile.py --img-size ${rb%:*} --batch ${rb#*:} --top 14 2>&1 | grep -v Warn | tee -a $OUT/kprof_s13.txt; done
timeout 300 python3 .scratch/s13/micro.py 2>&1 | tee $OUT/micro_s13.txt | grep -v "^x_proj triton" ; grep "x_proj triton" $OUT/micro_s13.txt | sort -t: -k2 -n | head -5
