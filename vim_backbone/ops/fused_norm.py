"""Residual add + RMSNorm in one Triton pass (CUDA), with the fp32 residual stream of the release.

``add_rmsnorm(x, residual, weight, eps)`` returns ``(rmsnorm(residual + x) * weight in x.dtype,
residual + x in fp32)``: one read of each input and one write of each output instead of the eight
elementwise kernels the PyTorch expression launches. The backward is its closed form in one Triton pass
(plus the sum of per-program weight-gradient rows), where PyTorch took about a dozen kernels.
"""
from typing import Optional, Tuple

import torch

from .fused_bimamba import fused_available, load_fused_kernels, next_power_of_2, on_device_of

__all__ = ["add_rmsnorm", "add_rmsnorm_available", "rmsnorm_again"]


def add_rmsnorm_available(x: torch.Tensor) -> bool:
    """True for tensors the Triton kernel can take: fp32/fp16/bf16 on a device Triton runs on."""
    return x.dtype in (torch.float32, torch.float16, torch.bfloat16) and fused_available(x.device)


def _blocks(dim: int, rows_factor: int = 1) -> tuple:
    """(BLOCK_D, BLOCK_M): the row's power of two, and the forward's rows a program times ``rows_factor``."""
    block_d = max(16, next_power_of_2(dim))
    return block_d, max(1, min(16, 4096 // block_d) * rows_factor)


# rows a program of the backward, twice the forward's (8192 elements a tile from D = 129 up): fewer programs each
# summing their share of the weight gradient over their warps. H200, the kernel alone on 8 x 4097 rows (1024^2,
# batch 8), 4 warps, two rounds (docs/RESULTS.md, session 19): D = 192 (Vim-Ti), 32 rows 49.7 / 54.1 us against the
# forward's 16, 61.4 / 61.7; D = 384 (Vim-S), 16 rows 80.1 / 80.2 us, 8 80.5 / 144.2, 32 549; D = 768 (Vim-B), 8 rows
# 132.8 / 132.7 us, 4 156.9 / 157.2, 16 1157
BWD_ROWS_FACTOR = 2


def _forward(x, residual, weight, eps, out_dtype):
    """The kernel's outputs: out (rows, D) in ``out_dtype``, res_out (rows, D) fp32, rstd (rows,)."""
    k = load_fused_kernels()
    dim = x.shape[-1]
    x2 = x.reshape(-1, dim)
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    res2 = None if residual is None else residual.reshape(-1, dim).contiguous()
    rows = x2.shape[0]
    out = torch.empty(rows, dim, device=x.device, dtype=out_dtype)
    res_out = torch.empty(rows, dim, device=x.device, dtype=torch.float32)
    rstd = torch.empty(rows, device=x.device, dtype=torch.float32)
    block_d, block_m = _blocks(dim)
    grid = ((rows + block_m - 1) // block_m,)
    k._add_rmsnorm_fwd_kernel[grid](x2, x2 if res2 is None else res2, weight, out, res_out, rstd, rows, dim, eps,
                                    HAS_RESIDUAL=res2 is not None, BLOCK_M=block_m, BLOCK_D=block_d, num_warps=4)
    return out, res_out, rstd


class _AddRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, weight, eps):
        out, res_out, rstd = _forward(x, residual, weight, eps, x.dtype)
        ctx.save_for_backward(res_out, rstd, weight)
        ctx.has_residual = residual is not None
        ctx.x_dtype = x.dtype
        return out.view(x.shape), res_out.view(*x.shape[:-1], x.shape[-1])

    @staticmethod
    def backward(ctx, grad_out, grad_res):
        k = load_fused_kernels()
        res_out, rstd, weight = ctx.saved_tensors
        rows, dim = res_out.shape
        g = grad_out.reshape(-1, dim).contiguous()
        g_res = None if grad_res is None else grad_res.reshape(-1, dim).contiguous()
        dx = torch.empty(rows, dim, device=res_out.device, dtype=ctx.x_dtype)
        dres = torch.empty_like(res_out) if ctx.has_residual else dx  # dummy pointer without a residual
        block_d, block_m = _blocks(dim, BWD_ROWS_FACTOR)
        grid = ((rows + block_m - 1) // block_m,)
        dw = torch.empty(grid[0], dim, device=res_out.device, dtype=torch.float32)  # per-program partial sums
        k._add_rmsnorm_bwd_kernel[grid](res_out, rstd, weight, g, g if g_res is None else g_res, dx, dres, dw, rows,
                                        dim, HAS_GRAD_RES=g_res is not None, HAS_RESIDUAL=ctx.has_residual,
                                        BLOCK_M=block_m, BLOCK_D=block_d, num_warps=4)
        shape = grad_out.shape
        return (dx.view(shape), dres.view(shape) if ctx.has_residual else None, dw.sum(0).to(weight.dtype), None)


def rmsnorm_again(res_out: torch.Tensor, weight: torch.Tensor, eps: float, dtype: torch.dtype) -> torch.Tensor:
    """:func:`add_rmsnorm`'s first output again from its second, ``res_out``, without autograd: the same kernel on
    the same fp32 values, so the same values to the bit (a backward that keeps res_out anyway recomputes the
    normalised tensor instead of keeping it too). ``dtype``: that of the ``x`` of the call that made ``res_out``."""
    with on_device_of(res_out), torch.no_grad():
        return _forward(res_out, None, weight, eps, dtype)[0].view(res_out.shape)


def add_rmsnorm(x: torch.Tensor, residual: Optional[torch.Tensor], weight: torch.Tensor,
                eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(rmsnorm(residual + x) * weight).to(x.dtype), residual + x`` (fp32), over the last dim.

    Args:
        x (Tensor): (..., D) fp32/fp16/bf16. residual (Tensor, optional): (..., D) fp32; None = zeros.
        weight (Tensor): (D,). eps (float): added to the mean square.
    """
    with on_device_of(x):  # Triton launches on the current device
        return _AddRMSNorm.apply(x, residual, weight, eps)
