"""tools/exp2_rate.py: refuses without a GPU; on a GPU, measures a positive rate within the pipe's bound."""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT, load_tool


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path")
def test_exp2_rate_needs_a_gpu():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "exp2_rate.py")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1",
                    reason="needs CUDA")
def test_exp2_rate_on_gpu():
    res = load_tool("exp2_rate").measure(iters=64)
    assert res["ms"] > 0 and res["exp2_per_s"] > 1e11
    if res["per_sm_per_clock"] is not None:  # no GPU of this project's era issues more than 32 a clock an SM
        assert res["per_sm_per_clock"] < 33
