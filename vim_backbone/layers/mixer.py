"""Bidirectional Mamba mixer ("bimamba v2" with divide-out), parameter names as released."""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import ScanBackend, get_backend
from .norm import autocast_dtype, upcast


class BiMambaMixer(nn.Module):
    """``out_proj((o_fwd + flip(o_bwd)) / 2)`` where the backward direction scans the flipped sequence.

    Args:
        d_model (int): embedding dim D.
        d_state (int): SSM state size N. Defaults to 16.
        d_conv (int): causal conv width. Defaults to 4.
        expand (int): E = expand * D. Defaults to 2.
        dt_rank (int | "auto"): R; ``ceil(D / 16)`` when "auto".
        dt_min, dt_max, dt_init_floor (float): range of the initial step size.
        backend (str, optional): scan backend (see :mod:`vim_backbone.ops`); None = automatic.
        recompute (bool): with the ``fused`` backend, keep fewer activations for the backward: in_proj runs inside
            the fused op's autograd node (``in_proj_w`` of :func:`~vim_backbone.ops.fused_bimamba.scan_fused_prepared`),
            which keeps the mixer's input (or, given ``hidden_from``, what it is made from), the x_proj output and
            the chunk states, and recomputes in_proj's output, u, dt and B, C in the backward. The other backends
            keep what autograd saves. Defaults to False.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank="auto",
                 dt_min: float = 1e-3, dt_max: float = 1e-1, dt_init_floor: float = 1e-4,
                 backend: Optional[str] = None, recompute: bool = False):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.backend = backend
        self.recompute = recompute
        E, N, R = self.d_inner, d_state, self.dt_rank

        self.in_proj = nn.Linear(d_model, 2 * E, bias=False)
        self.out_proj = nn.Linear(E, d_model, bias=False)
        for suffix in ("", "_b"):
            setattr(self, f"conv1d{suffix}", nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1, bias=True))
            setattr(self, f"x_proj{suffix}", nn.Linear(E, R + 2 * N, bias=False))
            setattr(self, f"dt_proj{suffix}", nn.Linear(R, E, bias=True))
        self.A_log = nn.Parameter(torch.empty(E, N))
        self.A_b_log = nn.Parameter(torch.empty(E, N))
        self.D = nn.Parameter(torch.empty(E))
        self.D_b = nn.Parameter(torch.empty(E))
        self._dt_range = (dt_min, dt_max, dt_init_floor)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Initialisation of the SSM parameters as released (dt, A, D)."""
        dt_min, dt_max, floor = self._dt_range
        std = self.dt_rank ** -0.5
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        for suffix, a_name, d_name in (("", "A_log", "D"), ("_b", "A_b_log", "D_b")):
            dt_proj = getattr(self, f"dt_proj{suffix}")
            nn.init.uniform_(dt_proj.weight, -std, std)
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=floor)
            dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            dt_proj.bias._no_reinit = True
            getattr(self, a_name).copy_(torch.log(A))
            getattr(self, d_name).fill_(1.0)

    def _direction(self, backend: ScanBackend, xz: torch.Tensor, suffix: str, A_log: torch.Tensor,
                   D: torch.Tensor) -> torch.Tensor:
        """One scan direction on ``xz`` (B, 2E, L) -> gated output (B, E, L)."""
        conv = getattr(self, f"conv1d{suffix}")
        x_proj = getattr(self, f"x_proj{suffix}")
        dt_proj = getattr(self, f"dt_proj{suffix}")
        x, z = xz.chunk(2, dim=1)
        x = backend.causal_conv1d(x, conv.weight.squeeze(1), conv.bias, "silu")
        x_dbl = F.linear(x.transpose(1, 2), x_proj.weight)  # (B, L, R + 2N)
        dt, Bm, Cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, dt_proj.weight).transpose(1, 2)  # (B, E, L)
        # (B, N, L): the scan kernels want L contiguous
        Bm = Bm.transpose(1, 2).contiguous()
        Cm = Cm.transpose(1, 2).contiguous()
        A = -torch.exp(upcast(A_log))
        return backend.selective_scan(x, dt, A, Bm, Cm, upcast(D), z=z, delta_bias=upcast(dt_proj.bias),
                                      delta_softplus=True)

    def _scan_params(self) -> tuple:
        """The parameters the fused op takes, in its order, with A_log and A_b_log where it takes A."""
        conv, conv_b, dt_proj, dt_proj_b = self.conv1d, self.conv1d_b, self.dt_proj, self.dt_proj_b
        return (conv.weight, conv.bias, conv_b.weight, conv_b.bias, self.x_proj.weight, self.x_proj_b.weight,
                dt_proj.weight, dt_proj.bias, dt_proj_b.weight, dt_proj_b.bias, self.A_log, self.A_b_log, self.D,
                self.D_b)

    def _keep(self, slot: str, key: tuple, build):
        """``build()``, kept in the module under ``slot`` and rebuilt when ``key`` changes. Derived state: not
        pickled, not deep-copied (``__getstate__``)."""
        kept = self.__dict__.setdefault("_kept", {})
        entry = kept.get(slot)
        if entry is None or entry[0] != key:
            kept[slot] = entry = (key, build())
        return entry[1]

    def _fused_weights(self, dtype: torch.dtype):
        """The fused op's prepared weights (:func:`~vim_backbone.ops.fused_bimamba.prepare_fused_weights`),
        kept between calls while gradients are off: about 16 small kernels a mixer that inference would
        otherwise launch every call. Rebuilt when the dtype or any parameter changes (in-place updates bump
        a tensor's version; ``.to()`` / ``load_state_dict`` change its storage or version)."""
        from ..ops.fused_bimamba import prepare_fused_weights
        # NOTE: the parameters by name, not self.parameters(): walking the submodules took three times as
        # long (72 against 22 us a call on a 2-core CPU), once per block and forward
        key = (dtype, tuple((p.data_ptr(), p._version, p.dtype) for p in self._scan_params()))
        return self._keep("fused", key,
                          lambda: prepare_fused_weights(*self._scan_params(), self.dt_rank, self.d_state, dtype,
                                                        a_log=True))

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_kept", None)  # derived state (_keep)
        return state

    def forward(self, hidden: torch.Tensor, hidden_from=None) -> torch.Tensor:
        """(B, L, D) -> (B, L, D).

        ``hidden_from`` ``(fn, t)``: ``fn(t)`` gives ``hidden`` again, the same values, without autograd (the block's
        norm of the residual stream, :meth:`~vim_backbone.layers.norm.RMSNorm.norm_again`). With ``recompute`` and the
        fused backend the backward then makes ``hidden`` from ``t``, which the norm keeps anyway, and nothing keeps
        ``hidden`` itself.
        """
        if hidden.numel() == 0:  # an empty batch: no work, and the kernels take no empty launch
            backend = get_backend("reference", hidden.device)
        else:
            backend = get_backend(self.backend, hidden.device, batch=hidden.shape[0])
        in_w = self.in_proj.weight
        if backend.name == "fused" and not torch.is_grad_enabled():
            from ..ops.fused_bimamba import FUSED_DTYPES, fused_mixer_inference
            dtype = autocast_dtype(hidden.device.type) or torch.promote_types(hidden.dtype, in_w.dtype)
            if dtype in FUSED_DTYPES:
                # the whole mixer without autograd, holding fewer activations at once
                return fused_mixer_inference(hidden, in_w, self.out_proj.weight, self._fused_weights(dtype),
                                             self.dt_rank, self.d_state)
        if backend.name == "fused" and self.recompute:
            # in_proj inside the fused op's autograd node, which keeps the (B, L, D) input for the backward instead
            # of the (B, L, 2E) output, and recomputes the output (and u, dt, B, C) there; the casts autocast
            # would make, here
            from ..ops.fused_bimamba import FUSED_DTYPES, prepare_fused_weights, scan_fused_prepared
            dtype = autocast_dtype(hidden.device.type)
            if dtype is not None:
                hidden, in_w = hidden.to(dtype), in_w.to(dtype)
                if hidden_from is not None:
                    again, source = hidden_from
                    hidden_from = (lambda t: again(t).to(dtype)), source
            if hidden.dtype in FUSED_DTYPES:
                weights = prepare_fused_weights(*self._scan_params(), self.dt_rank, self.d_state, hidden.dtype,
                                                a_log=True)
                out = scan_fused_prepared(hidden, None, weights, self.dt_rank, self.d_state, recompute=True,
                                          in_proj_w=in_w, x_from=hidden_from)
                return F.linear(out.transpose(1, 2), self.out_proj.weight)
        # (B, 2E, L): a view of the (B, L, 2E) GEMM output (channels contiguous); the backends take strides
        xz = F.linear(hidden, in_w).transpose(1, 2)
        if backend.name == "fused" and xz.dtype != torch.float64:
            # one fused op over the original order (bidirectional_scan_fused's): anti-causal conv + reverse scan
            # for the backward direction, so no flipped copies; fp64 (tests) takes the two-direction path below.
            # z None: the op takes xz whole and returns its gradient as one tensor. A = -exp(A_log) is made
            # inside the prepared weights' one autograd node.
            from ..ops.fused_bimamba import prepare_fused_weights, scan_fused_prepared
            weights = prepare_fused_weights(*self._scan_params(), self.dt_rank, self.d_state, xz.dtype, a_log=True)
            out = scan_fused_prepared(xz, None, weights, self.dt_rank, self.d_state)
            return F.linear(out.transpose(1, 2), self.out_proj.weight)
        out_f = self._direction(backend, xz, "", self.A_log, self.D)
        out_b = self._direction(backend, xz.flip(-1), "_b", self.A_b_log, self.D_b)
        out = (out_f + out_b.flip(-1)) / 2
        return F.linear(out.transpose(1, 2), self.out_proj.weight)
