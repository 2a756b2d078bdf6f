"""The stock CUDA kernels from ``mamba-ssm`` (and ``causal-conv1d`` when installed), imported lazily."""
import warnings
from typing import Callable, Optional, Tuple

import torch

from .selective_scan_ref import causal_conv1d_ref

INSTALL_HINT = (
    "install the CUDA kernels with `bash tools/install_cuda_ops.sh` (builds mamba-ssm==2.3.2.post1 and "
    "causal-conv1d==1.7.0 for this GPU), or use VIM_SCAN_BACKEND=reference"
)


def load_mamba_ssm() -> Tuple[Callable, Callable]:
    """Return ``(selective_scan_fn, causal_conv1d_fn)``; raises ImportError naming the fix."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception as e:  # ImportError, or OSError from a CUDA extension built for another torch
        raise ImportError(f"mamba_ssm selective scan kernel is not importable ({e}); {INSTALL_HINT}") from e
    try:
        from causal_conv1d import causal_conv1d_fn as _conv
    except Exception as e:  # the scan kernel works without it; the conv then runs as F.conv1d
        _conv = None
        # NOTE: this function runs once per process (the backend is cached), so this is said once
        warnings.warn(f"causal-conv1d not importable ({e}): the mamba_ssm backend runs its depthwise conv with "
                      "F.conv1d (correct, slower). `bash tools/install_cuda_ops.sh --only conv` builds it.",
                      stacklevel=2)

    def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                      activation: Optional[str] = None) -> torch.Tensor:
        # causal_conv1d wants fp32/fp16/bf16 CUDA tensors with a contiguous L axis
        if _conv is not None and x.is_cuda:
            return _conv(x.contiguous(), weight.to(x.dtype).contiguous(),
                         None if bias is None else bias.to(x.dtype), activation=activation)
        return causal_conv1d_ref(x, weight, bias, activation)

    def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
        return selective_scan_fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(),
                                 C.contiguous(), D, None if z is None else z.contiguous(), delta_bias,
                                 delta_softplus, return_last_state)

    return selective_scan, causal_conv1d
