import os
from typing import Optional, Tuple

import torch
import torch.nn as nn


def _fused_add_norm_enabled(x: torch.Tensor) -> bool:
    # the Triton add + norm runs on CUDA tensors; VIM_FUSED_NORM=0 keeps the PyTorch expression
    if not x.is_cuda or os.environ.get("VIM_FUSED_NORM", "1") == "0":
        return False
    from ..ops.fused_norm import add_rmsnorm_available
    return add_rmsnorm_available(x)


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype in effect on ``device_type``, or None (torch < 2.4 has only the CUDA queries)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    if device_type == "cuda" and torch.is_autocast_enabled():
        return torch.get_autocast_gpu_dtype()
    return None


def upcast(x: torch.Tensor) -> torch.Tensor:
    """To fp32, or leave fp64 as is (the residual stream and norm statistics are never below fp32)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class RMSNorm(nn.Module):
    """Root-mean-square norm with a weight and no bias (``norm.weight`` in the release)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = upcast(x)
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight.to(xf.dtype)).to(x.dtype)

    @staticmethod
    def add_norm_kernel(x: torch.Tensor, residual: Optional[torch.Tensor]) -> bool:
        """Whether :meth:`add_norm` takes the Triton kernel for these inputs."""
        return _fused_add_norm_enabled(x) and (residual is None or residual.dtype == torch.float32)

    def add_norm(self, x: torch.Tensor, residual: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``residual = residual + x`` kept in fp32, returns ``(norm(residual) in x.dtype, residual)``.

        On CUDA one Triton kernel does both (:func:`vim_backbone.ops.fused_norm.add_rmsnorm`).
        """
        if self.add_norm_kernel(x, residual):
            from ..ops.fused_norm import add_rmsnorm
            return add_rmsnorm(x, residual, self.weight, self.eps)
        residual = upcast(x) if residual is None else residual + upcast(x)
        return self(residual).to(x.dtype), residual

    @torch.no_grad()
    def norm_again(self, residual: torch.Tensor, dtype: torch.dtype, kernel: bool) -> torch.Tensor:
        """:meth:`add_norm`'s first output again, without autograd, from the ``residual`` it returned: the same
        values to the bit. ``dtype``: that output's; ``kernel``: :meth:`add_norm_kernel` of that call."""
        if kernel:
            from ..ops.fused_norm import rmsnorm_again
            return rmsnorm_again(residual, self.weight, self.eps, dtype)
        return self(residual).to(dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
