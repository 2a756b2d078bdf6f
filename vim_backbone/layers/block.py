from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .drop_path import DropPath
from .mixer import BiMambaMixer
from .norm import RMSNorm


class VimBlock(nn.Module):
    """Pre-norm residual block with fused add-norm semantics and an fp32 residual stream.

    ``residual = residual + drop_path(hidden)`` (or ``hidden`` for the first block), then
    ``hidden = mixer(norm(residual))``. Returns ``(hidden, residual)``.
    """

    def __init__(self, dim: int, drop_path: float = 0.0, norm_eps: float = 1e-5, **mixer_kwargs):
        super().__init__()
        self.norm = RMSNorm(dim, eps=norm_eps)
        self.mixer = BiMambaMixer(dim, **mixer_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, hidden: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.drop_path(hidden) if residual is not None else hidden
        recompute = self.mixer.recompute and torch.is_grad_enabled()
        kernel = recompute and self.norm.add_norm_kernel(x, residual)  # of the residual coming in
        normed, residual = self.norm.add_norm(x, residual)
        if not recompute:
            return self.mixer(normed), residual
        # the mixer may make its input again from the fp32 residual stream, which the norm keeps anyway
        again = partial(self.norm.norm_again, dtype=normed.dtype, kernel=kernel)
        return self.mixer(normed, hidden_from=(again, residual)), residual
