from typing import Optional, Tuple

import torch
import torch.nn as nn


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

    def add_norm(self, x: torch.Tensor, residual: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``residual = residual + x`` kept in fp32, returns ``(norm(residual) in x.dtype, residual)``."""
        residual = upcast(x) if residual is None else residual + upcast(x)
        return self(residual).to(x.dtype), residual

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
