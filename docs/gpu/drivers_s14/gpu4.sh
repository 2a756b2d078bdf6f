#!/bin/bash
# session 14, call 4 (two GPUs): graphs captured on the input's GPU after a first capture elsewhere; the fused ops'
# device guard; the inference-path GPU tests after the guard's refactor
nvidia-smi -L | tee $OUT/gpu4_s14.txt
mkdir -p /tmp/site2 && pip install -q --no-index --no-deps --target /tmp/site2 .whl/*.whl 2>&1 | grep -v WARN | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site2
timeout 100 python3 -m pytest -q -p no:cacheprovider -rs --tb=short -W "error:The CUDA Graph is empty:UserWarning" tests/models/test_cuda_graph.py tests/ops/test_device_guard.py 2>&1 | grep -v "^$" | tail -20 | tee $OUT/gpu_tests_s14_call4.txt
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_fused.py -k "gate_out or mixer_inference or model_fused_inference" 2>&1 | grep -v "^$" | tail -3 | tee -a $OUT/gpu_tests_s14_call4.txt
# the same graph test against the capture before this fix (torch.cuda.graph's default stream): it should fail
sed -i 's/with torch.cuda.graph(graph, stream=side):/with torch.cuda.graph(graph):/' vim_backbone/models/cuda_graph.py
timeout 60 python3 -m pytest -q -p no:cacheprovider --tb=line tests/models/test_cuda_graph.py -k not_current 2>&1 | grep -v "^$" | tail -4 | sed 's/^/before the fix: /' | tee -a $OUT/gpu_tests_s14_call4.txt
