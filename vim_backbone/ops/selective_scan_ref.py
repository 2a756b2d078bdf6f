"""Pure-PyTorch selective scan and causal depthwise conv: the reference backend.

Same signatures and semantics as ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` and
``causal_conv1d.causal_conv1d_fn``, for the variable-B/C case Vim uses. Runs on any device; autograd
gives the backward pass.

The recurrence ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t`` is evaluated chunk by chunk along L: per
chunk of T tokens the decays and inputs (B, E, T, N) are computed in one vectorised step, then the state
is stepped through the chunk. Peak temporary memory is O(B E T N), not O(B E L N). (A masked T x T
"segment-sum" form was measured 20x slower on CPU: it needs T times more ``exp``.)
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ["selective_scan_ref", "causal_conv1d_ref", "choose_chunk_size"]

# Upper bound on elements of one (B, E, T, N) chunk tensor (64 MiB in fp32).
_CHUNK_BUDGET = 1 << 24


def choose_chunk_size(batch: int, channels: int, state: int, length: int, budget: int = _CHUNK_BUDGET) -> int:
    """Largest power-of-two chunk (16..512) whose (B, E, T, N) tensor fits ``budget`` elements."""
    chunk = 512
    while chunk > 16 and batch * channels * chunk * state > budget:
        chunk //= 2
    return max(1, min(chunk, length))


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: Optional[int] = None,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan ``y = SSM(A, B, C, D)(u)`` gated by ``silu(z)``.

    Args:
        u (Tensor): input, (B, E, L).
        delta (Tensor): step sizes before bias/softplus, (B, E, L).
        A (Tensor): state matrix (diagonal), (E, N); real.
        B (Tensor): input-dependent input matrix, (B, N, L).
        C (Tensor): input-dependent output matrix, (B, N, L).
        D (Tensor, optional): skip connection, (E,).
        z (Tensor, optional): gate, (B, E, L); output is multiplied by ``silu(z)``.
        delta_bias (Tensor, optional): (E,), added to ``delta`` before the softplus.
        delta_softplus (bool): apply softplus to ``delta``.
        return_last_state (bool): also return the final state, (B, E, N).
        chunk_size (int, optional): tokens per chunk; chosen from a memory budget when None.

    Returns:
        Tensor: y, (B, E, L), dtype of ``u`` (state math is done in fp32, or fp64 for fp64 inputs).
    """
    if B.dim() != 3 or C.dim() != 3:
        raise ValueError(
            f"selective_scan_ref supports input-dependent B and C of shape (batch, d_state, L); got "
            f"B {tuple(B.shape)} and C {tuple(C.shape)}"
        )
    dtype_in = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u = u.to(compute)
    delta = delta.to(compute)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    A = A.to(compute)
    Bm = B.to(compute).transpose(1, 2)  # (B, L, N)
    Cm = C.to(compute).transpose(1, 2)  # (B, L, N)

    batch, channels, length = u.shape
    state = A.shape[1]
    T = chunk_size or choose_chunk_size(batch, channels, state, length)

    h = u.new_zeros(batch, channels, state)
    ys = []
    for start in range(0, length, T):
        end = min(start + T, length)
        dt = delta[:, :, start:end]  # (B, E, t)
        decay = torch.exp(dt[..., None] * A[None, :, None, :])  # (B, E, t, N)
        x = (dt * u[:, :, start:end])[..., None] * Bm[:, None, start:end, :]  # (B, E, t, N)
        # NOTE: unbind, not decay[:, :, i]: the backward of per-step indexing writes each step's gradient
        # into a zeroed full-chunk tensor (O(T^2) memory traffic, ~10x slower training on CPU).
        # y_t = h_t C_t is taken per step ((B, E, N) @ (B, N, 1)): stacking all states for one einsum
        # cost more than the scan itself on CPU.
        C_steps = Cm[:, start:end, :, None].unbind(1)  # t x (B, N, 1)
        for decay_i, x_i, c_i in zip(decay.unbind(2), x.unbind(2), C_steps):
            h = torch.addcmul(x_i, decay_i, h)  # decay * h + x in one op
            ys.append(torch.bmm(h, c_i))  # (B, E, 1)
    y = torch.cat(ys, dim=-1)
    if D is not None:
        y = y + D.to(compute)[None, :, None] * u
    if z is not None:
        y = y * F.silu(z.to(compute))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y


def causal_conv1d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: Optional[str] = None,
) -> torch.Tensor:
    """Causal depthwise conv1d: output t sees inputs <= t.

    Args:
        x (Tensor): (B, E, L).
        weight (Tensor): (E, W).
        bias (Tensor, optional): (E,).
        activation (str, optional): None, "silu" or "swish".
    """
    if activation not in (None, "silu", "swish"):
        raise ValueError(f"activation {activation!r} not in (None, 'silu', 'swish')")
    width = weight.shape[1]
    length = x.shape[-1]
    out = F.conv1d(x, weight.unsqueeze(1).to(x.dtype), None if bias is None else bias.to(x.dtype),
                   padding=width - 1, groups=x.shape[1])[..., :length]
    return F.silu(out) if activation is not None else out
