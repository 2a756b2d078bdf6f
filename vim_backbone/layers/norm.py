from typing import Optional, Tuple

import torch
import torch.nn as nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a weight and no bias (``norm.weight`` in the release)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight.float()).to(x.dtype)

    def add_norm(self, x: torch.Tensor, residual: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``residual = residual + x`` kept in fp32, returns ``(norm(residual) in x.dtype, residual)``."""
        residual = x.float() if residual is None else residual + x.float()
        return self(residual).to(x.dtype), residual

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
