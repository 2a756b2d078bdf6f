#!/bin/bash
# session 9, call 5: wait for call 4's mmcv build, then the AMP toy-config tests (bf16 / fp16, det / seg)
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
for i in $(seq 1 80); do
  grep -q "built for\|FAILED\|reusing" /tmp/mmcv_build.log 2>/dev/null && break
  sleep 5
done
sleep 15
cat /tmp/mmcv_build.log | tail -5 | tee $OUT/mmcv_build_s9.txt
python3 -c "import mmcv, torch; from mmcv.ops import nms; print(mmcv.__version__, nms(torch.tensor([[0., 0., 10., 10.]], device='cuda'), torch.ones(1, device='cuda'), 0.5)[1])" 2>&1 | tail -2
timeout 420 python3 -m pytest -q -rA tests/gpu/test_amp_toy_configs.py -p no:cacheprovider 2>&1 | grep -v Warn | tail -25 | tee $OUT/amp_toy_s9.txt
