"""Scan backends and the choice between them.

``reference`` (pure PyTorch, any device) and ``mamba_ssm`` (stock CUDA kernels) are twins with the
signatures of ``mamba_ssm``'s ``selective_scan_fn`` and ``causal_conv1d_fn``. ``fused`` (Triton, its forward walk in
Triton's Gluon dialect where that imports) runs
the whole bidirectional conv + scan + gate of a mixer at once (``ScanBackend.bidirectional``). The
choice is made by :func:`resolve_backend`: an explicit argument wins, then ``VIM_SCAN_BACKEND``, then
automatic. On CUDA: ``fused`` for batches of at least FUSED_MIN_BATCH rows (1: any known batch; at
batches 1, 2, 4 and 8, Vim-Ti at 224² / 512² / 1024² on an H200, it beat the stock kernels in 34 of 36
inference and training cases and trailed by 6% and 1% in training at 512², batch 1 and 4: docs/RESULTS.md,
session 7), inference and training; ``mamba_ssm`` for
an unknown batch when its kernels import; ``fused`` when only Triton imports (no build step);
``reference`` when neither does, and always off CUDA. Measured on an H200
(docs/RESULTS.md, session 7), Vim-Ti bf16, fused vs stock in one run: inference 2.53x / 4.33x / 3.53x
at 224² (batch 128) / 1024² (16) / 1248² (8), 6.23x / 4.56x / 3.74x from CUDA graphs (492b8cd); a training step
1.50x / 1.58x / 1.26x at 224² (128) / 1024² (8) / 1248² (4) on a slow host, each with less memory (training is
host-bound: 2.17x at 1024² on a faster host); the scan stage 3.89x forward at batch 16.
"""
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import torch

from .selective_scan_ref import causal_conv1d_ref, selective_scan_ref

__all__ = ["BACKENDS", "ScanBackend", "get_backend", "resolve_backend", "selective_scan_ref", "causal_conv1d_ref"]

BACKENDS = ("reference", "mamba_ssm", "fused")
FUSED_MIN_BATCH = 1  # automatic choice: fused from this batch size up (see above)
ENV_VAR = "VIM_SCAN_BACKEND"


@dataclass(frozen=True)
class ScanBackend:
    name: str
    selective_scan: Callable
    causal_conv1d: Callable
    # whole-mixer bidirectional scan (signature of ops.fused_bimamba.bidirectional_scan_fused), or None
    bidirectional: Optional[Callable] = None


@lru_cache(maxsize=None)
def _load(name: str) -> ScanBackend:
    if name == "reference":
        return ScanBackend(name, selective_scan_ref, causal_conv1d_ref)
    if name == "mamba_ssm":
        from .mamba_ssm_backend import load_mamba_ssm
        scan, conv = load_mamba_ssm()
        return ScanBackend(name, scan, conv)
    if name == "fused":
        from .fused_bimamba import bidirectional_scan_fused, load_fused_kernels
        load_fused_kernels()  # ImportError naming the install command
        return ScanBackend(name, selective_scan_ref, causal_conv1d_ref, bidirectional_scan_fused)
    raise ValueError(f"scan backend {name!r} not in {BACKENDS}")


@lru_cache(maxsize=None)
def _available(name: str) -> bool:
    try:
        _load(name)
        return True
    except ImportError:
        return False


_warned_fallback = False


def resolve_backend(requested: Optional[str], device: torch.device, batch: Optional[int] = None) -> str:
    """Name of the backend to run on ``device``.

    Args:
        requested (str, optional): ``None``/``"auto"`` for automatic, or one of :data:`BACKENDS`.
            ``VIM_SCAN_BACKEND`` is used when this is ``None``.
        device (torch.device): where the tensors live.
        batch (int, optional): rows of the batch; unknown counts as small.
    """
    global _warned_fallback
    if requested is None:
        requested = os.environ.get(ENV_VAR) or "auto"
    if requested != "auto":
        if requested not in BACKENDS:
            raise ValueError(f"scan backend {requested!r} not in {('auto',) + BACKENDS} "
                             f"(set by argument or {ENV_VAR})")
        _load(requested)  # raises ImportError with the install command when unavailable
        if requested == "fused":
            from .fused_bimamba import fused_available
            if not fused_available(device):
                raise ValueError(f"scan backend 'fused' needs a CUDA device (or TRITON_INTERPRET=1); got {device}")
        if requested == "mamba_ssm" and torch.device(device).type != "cuda":
            raise ValueError(f"scan backend 'mamba_ssm' runs CUDA kernels only; got {device}")
        return requested
    if device.type == "cuda":
        from .fused_bimamba import fused_available
        fused_ok = _available("fused") and fused_available(device)
        if fused_ok and (batch or 0) >= FUSED_MIN_BATCH:
            return "fused"
        if _available("mamba_ssm"):
            return "mamba_ssm"
        if fused_ok:
            return "fused"
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn("neither Triton nor the mamba_ssm CUDA kernels are importable: Vim runs the pure-PyTorch "
                          "reference scan on GPU (slow). Install the kernels with `bash tools/install_cuda_ops.sh`.",
                          stacklevel=3)
    return "reference"


def get_backend(requested: Optional[str], device: torch.device, batch: Optional[int] = None) -> ScanBackend:
    return _load(resolve_backend(requested, device, batch=batch))
