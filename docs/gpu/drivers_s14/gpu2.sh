#!/bin/bash
# session 14, call 2 (two GPUs): the graph device guard on cuda:1; mmcv's CUDA ops; whole detector / segmentor
# throughput (tools/benchmark.py --full det|seg), fused backend, eager and with the backbone's CUDA graphs
nvidia-smi -L | tee $OUT/gpu2_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 100 python3 -m pytest -q -p no:cacheprovider -rs tests/models/test_cuda_graph.py 2>&1 | grep -v "^$" | tail -4 | tee $OUT/gpu_tests_s14_call2.txt
( time timeout 330 bash tools/install_cuda_ops.sh --only mmcv --sdist-dir .sdist ) > $OUT/mmcv_build_s14.log 2>&1
tail -4 $OUT/mmcv_build_s14.log
python3 -c "import mmcv, mmcv.ops, mmdet, mmseg; from mmcv.ops import nms, RoIAlign; print('mmcv', mmcv.__version__, 'ops ok')" 2>&1 | tail -1
F="--device cuda:0 --no-progress --vim-backends fused --resolutions 512 1024"
for task in det seg; do
  timeout 130 python3 tools/benchmark.py --full $task $F --dtypes fp32 bf16 --modes infer train --out $OUT/full_${task}_s14.json 2>&1 | grep "^|\|Error\|error" | tee $OUT/full_${task}_s14.txt
  timeout 70 python3 tools/benchmark.py --full $task $F --dtypes fp32 bf16 --modes infer --cfg-options model.backbone.cuda_graph=True --out $OUT/full_${task}_graph_s14.json 2>&1 | grep "^|\|Error\|error" | tee $OUT/full_${task}_graph_s14.txt
done
