"""GPU tests: marked ``gpu``, skipped cleanly without CUDA or without the kernel under test.

Run on a GPU machine after ``bash tools/install_cuda_ops.sh``:  ``pytest -m gpu tests/gpu``.
"""
import pytest
import torch


def pytest_configure(config):
    # also registered in pytest.ini; repeated here so `pytest tests/gpu -c /dev/null` still knows it
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


@pytest.fixture(autouse=True)
def _exact_fp32():
    """No TF32: parity in fp32 must compare fp32 math (cuDNN convs default to TF32)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
