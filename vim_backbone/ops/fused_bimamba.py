"""Fused bidirectional scan (``fused`` backend): both Vim directions and the gate, in Triton.

``bidirectional_scan_fused`` and ``bidirectional_scan_ref`` are twins with one signature. Given the
mixer's ``x, z`` (B, E, L) after ``in_proj`` and the per-direction parameters, both return
``(o_fwd + flip(o_bwd)) / 2`` *before* ``out_proj``, where ``o_d = scan_d(...) * silu(z_d)`` exactly as
``BiMambaMixer._direction`` computes it. The fused path never flips: the backward direction is an
anti-causal conv and a scan from ``t = L - 1`` down to 0 over the original order.

Work split (forward), every activation channels-last ((..., L, E) in memory) so that the GEMMs read
and write rows and the scan's per-token loads are contiguous over channels:
  1. one Triton launch: conv + silu of both directions -> ``u`` (2, B, E, L);
  2. two batched GEMMs in PyTorch (cuBLAS; their weight gradients one direction at a time, see
     ``_weight_grad``): ``x_proj`` -> (dt, B, C), its columns padded so that B and C start on 16-byte
     boundaries (copied to fp32 when a backward follows, read in place otherwise: :func:`bc_dtype`), and
     ``dt_proj`` -> dt (2, B, E, L);
  3. one launch (two when the walk is cut into segments: a pass for the segment states, in
     STATE_PASS_PIECES pieces a segment; three where segment 0's walk runs beside that pass on a second
     stream, :func:`_head_early`, the pass then in HEAD_STATE_PASS_PIECES pieces): softplus(dt + bias), the scan and the D skip; a program owns
     BLOCK_E channels of one (batch row, direction) and walks its tokens one by one with the state
     (N, BLOCK_E) in registers (one exp per state element and token, several tokens' loads in flight;
     compiled with approximate exp2 / log2 / reciprocal PTX). The walk is the Gluon kernel of
     ``fused_bimamba_gluon`` (a channel and its N states a lane, stated) where it compiles, else the
     Triton one (see :func:`forward_kind`). Each direction's output lands in ``y`` (2, B, E, L);
  4. one Triton launch: ``(y[0] + y[1]) * silu(z) / 2``, already in the (B, L, E) rows ``out_proj``
     reads.
Inference (the mixer without gradients) runs the same kernels outside autograd, from in_proj to out_proj
(:func:`fused_mixer_inference`), ordered to hold fewer activations at once: x, then u, dt (the walks
write their outputs over it), then z for the gate.
Backward: one launch of the scan gradients (two with a cut: the dh each later segment sends back first;
states recomputed per chunk of CHUNK tokens from the chunk-entry states saved by the forward, (2, B, E, L /
CHUNK, N) fp32; the token walk run backwards, in Gluon where it compiles, a channel a lane, see
:func:`backward_walk_kind`, or with ``VIM_FUSED_BACKWARD=chunk`` associative scans over chunk tiles), two Triton
launches for the conv gradient (pre-activations recomputed from x; ``VIM_FUSED_CONV_BACKWARD=torch`` uses
PyTorch's conv instead), and the GEMM gradients, all in one autograd node (``_FusedMixer``): the gradients of the
x_proj output and of xz are each assembled in one tensor. With ``recompute`` the node keeps only x, z, the x_proj
output and the chunk-entry states, and the backward recomputes u, dt and the fp32 B, C first (the conv kernel,
dt_proj's GEMM, a cast); given in_proj's weight too, the node applies in_proj itself and keeps its input instead
of x, z, or, given how to make that input again, what it is made from. All of it (``BiMambaMixer(recompute=True)``
in a ``VimBlock``): Vim-Ti keeps 0.332 GB an image at 1024^2 for its backward instead of 0.848
(``tools/activation_memory.py``).
"""
import contextlib
import os
import warnings
from functools import lru_cache
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .selective_scan_ref import causal_conv1d_ref, selective_scan_ref

__all__ = ["bidirectional_scan_fused", "bidirectional_scan_ref", "bidirectional_selective_scan", "fused_available",
           "fused_mixer_inference", "load_fused_kernels", "on_device_of", "prepare_fused_weights",
           "scan_fused_prepared", "FusedWeights", "FUSED_DTYPES"]

FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Forward tile: one lane per channel (32 channels, one warp), the N states of a channel in its registers,
# so a token step needs no shuffles and the per-channel work (softplus, gate) is done once. H200 sweep at
# L = 4097, B = 16, E = 384 (docs/RESULTS.md): 32 x 1 warp is the fastest tile once the walk is segmented.
DEFAULT_BLOCK_E = 32  # channels per forward program
DEFAULT_NUM_WARPS = 1
DEFAULT_CHUNK = 32  # tokens between the states the forward saves for the backward
# Segments: cutting each direction's walk into pieces adds parallel programs (a lane-per-channel tile has
# only E / 32 x B x 2 of them, 384 for Vim-Ti at batch 16, fewer than the GPU's 528 warp schedulers) at
# the price of a pass over all segments but the last for their end states. By default the walk is cut
# until about SEGMENT_TARGET_PROGRAMS programs run, in pieces of at least SEGMENT_MIN_TOKENS tokens.
SEGMENT_TARGET_PROGRAMS = 1536
SEGMENT_MIN_TOKENS = 256
MAX_SEGMENTS = 8
# The segment-state pass (no outputs: 80 registers against 156 on an H200, so twice the programs fit) cuts
# each segment into STATE_PASS_PIECES pieces: ncu at B = 16 saw it, uncut, at 0.36 waves, 2.15 warps a
# scheduler and 340 us, a third of the forward. H200 sweep (docs/RESULTS.md), scan stage at L = 4097:
# 1 / 2 / 3 / 4 pieces 1.107 / 1.015 / 0.998 / 0.974 ms at B = 16; 1 / 2 / 4: 0.569 / 0.548 / 0.534 ms at B = 8.
STATE_PASS_PIECES = 4
# Segment 0 starts from a zero state, so its output walk can run beside the state pass (on a second CUDA
# stream) and hand on its end state: the state pass then covers segments 1 .. S - 2 only, and the output
# pass after it segments 1 .. S - 1. One segment more than SEGMENT_TARGET_PROGRAMS asks for keeps that
# second launch at the target. Done for walks of 2 ... HEAD_MAX_SEGMENTS segments, whose state pass cuts a
# segment into HEAD_STATE_PASS_PIECES pieces (not STATE_PASS_PIECES): its launch then has about as many
# programs as segment 0's walk beside it. H200, Vim-Ti with CUDA graphs, alternated runs (docs/RESULTS.md,
# sessions 12 and 13): with 4 pieces, cuts of 2 and 4 segments (batch 32 and 16 at 512^2 ... 1248^2) gained
# 0.9% ... 3.4% images/s and cuts of 8 (batch 8 and 4) lost 2.0% ... 6.5%; one piece then gained 0 ... 3.7% more
# at batch 16 / 32 (2 pieces lost 0.3 ... 2.8%). With one piece, cuts of 8 gained where a segment has
# HEAD_MIN_PROGRAMS = 192 programs (batch 8 at 768^2 / 1024^2 / 1248^2: +3.6% / +3.2% / +1.2%) and lost where it
# has 96 or 48 (batch 4 at 1024^2 / 1248^2: -4.8% / -5.4%; batch 2 at 1024^2: -11.8%).
HEAD_SEGMENT_EARLY = True
HEAD_MAX_SEGMENTS = MAX_SEGMENTS + 1
HEAD_MIN_PROGRAMS = 192
HEAD_STATE_PASS_PIECES = 1
# The walk backward: H200 sweep (docs/RESULTS.md), fused op forward + backward at L = 4097, E = 384:
# 16 channels a program, cut into 4 pieces at batch 16 (8.86 ms; 9.79 ms with 8 channels and 2 pieces)
# and 8 at batch 8 (4.62 ms; 5.77 ms) -- twice the forward's program target. Rechecked after the walk
# loaded its operands ahead (session 6): a cap of 4 pieces lowered Vim-Ti training at 1024^2 (batch 8)
# from 95.9 to 90.6 img/s in one run; one wave of programs (target 1536) was slower at batch 16.
BWD_SEGMENT_TARGET_PROGRAMS = 3072
# conv kernels' (channels, tokens) tile and warps: the forward's, then the backward's. H200 (docs/RESULTS.md,
# session 6), forward at B = 16, L = 4097 / B = 128, L = 197: 64 x 32 on 2 warps 0.062 / 0.044 ms, 32 x 64
# on 4 warps 0.106 / 0.052 ms (a 32 x 64 tile held 138 registers a thread, 3 programs an SM, and L1 was
# 79 % busy with the eight overlapping tap loads); forward + backward 0.490 / 0.513 against 0.603 / 0.459 ms,
# so the backward keeps 32 x 64 (session 4, B = 16: forward + backward 0.594 ms; 32 x 32: 0.905 ms;
# PyTorch's conv backward: 3.62 ms)
CONV_BLOCK_E, CONV_BLOCK_L, CONV_NUM_WARPS = 64, 32, 2
# The backward's second step (gx from gp's taps, and gz from the walk's two dz terms since session 17) alone at
# Vim-Ti's 1024^2 batch-8 shapes, H200, two rounds (docs/RESULTS.md, session 19): 32 x 128 on 4 warps 77.6 / 77.0 us,
# 64 x 64 80.5 / 79.9, 64 x 16 on 2 warps 85.6 / 85.7, 32 x 64 (the earlier tile) 95.6 / 95.7, 128 x 16 91.0, 64 x 32
# 109.9 / 109.4, 16 x 128 110.8, 64 x 64 on 8 warps 143.1 / 143.7, 128 x 32 780; Vim-Ti training from CUDA graphs
# 167.0 / 167.2 img/s against 165.5 / 165.8 at 1024^2 (8), 103.6 / 103.5 against 102.7 / 102.7 at 1248^2 (4)
CONV_BWD_BLOCK_E, CONV_BWD_BLOCK_L, CONV_BWD_NUM_WARPS = 32, 128, 4
# the conv backward's first step (gp and the weight gradients): (BLOCK_E, BLOCK_L, TILES, warps), TILES token tiles a
# program, the weight-gradient products summed over them once. Taken every tile (session 16), those sums were most of
# the kernel's time (ncu, H200, 1024^2 batch 8: 181 us a layer; 12 M bank conflicts in 27 M shared-memory wavefronts).
# H200, the conv backward alone at that size, do_bench (docs/RESULTS.md, session 17): 255 us for both steps, against
# 178 / 164 us at (32, 16, 16, 4) (two rounds), 185 at (32, 32, 8 or 16, 4), 204 at (32, 32, 4, 4); Vim-Ti training
# from CUDA graphs 150.1 -> 156.4 img/s at 1024^2 batch 8, 91.4 -> 94.5 at 1248^2 batch 4
CONV_BWD_PRE_TILE = (32, 16, 16, 4)
BWD_BLOCK_E = 4  # chunk backward tile (BWD_BLOCK_E, CHUNK, N); H100 sweep at L=4097, B=16, E=384 (docs/RESULTS.md)
BWD_WALK_BLOCK_E = 16  # walk backward: channels per program (its state and gradients tile is (BLOCK_E, N))
BWD_WALK_NUM_WARPS = 1
# the Gluon walk backward (and its summaries): warps a program, 32 channels each; the walk keeps the state
# entering each group of GLUON_BWD_GROUP tokens (2 or 4) and walks a group twice. H200, Vim-Ti training from CUDA
# graphs at 1024^2 batch 8 / 1248^2 batch 4, two runs each (docs/RESULTS.md, session 18): GROUP 4 160.7 / 99.7 and
# 160.6 / 99.7 img/s; GROUP 2 (222 registers compiled for sm_90, 9 programs an SM) 148.9 / 93.1 and 148.7 / 93.0,
# capped at 224 registers (the cut then counts 9 an SM: 6 segments at 1024^2) 127.1 / 81.4 and 127.3 / 81.7
GLUON_BWD_NUM_WARPS = 1
GLUON_BWD_GROUP = 4
# the lanes a channel's N states are spread over in the walk backward (1, 2 or 4; its summaries keep one):
# 32 NUM_WARPS / SPLIT channels a program. More warps an SM, for more instructions (the per-channel work on every
# lane, the sums over the channels through shared memory): compiled for sm_90 (Triton 3.6), SPLIT 2 takes 208
# registers without a cap, and 1.31-1.48x the loop instructions a token and 32 channels at caps 208 / 168 / 128.
# H200, Vim-Ti training from CUDA graphs, img/s at 1024^2 batch 8 / 1248^2 batch 4, two runs each (docs/RESULTS.md,
# session 19): SPLIT 1 161.5 / 100.3 and 161.3 / 100.3; SPLIT 2 capped at 168 registers (12 programs an SM) 149.5 /
# 93.6 and 149.6 / 93.8, at 128 (16) 143.4 / 87.6 and 143.5 / 87.6, at 208 (9) 117.3 / 71.7 and 117.4 / 71.9
GLUON_BWD_SPLIT = 1
# Its cut fills whole waves of resident programs (gluon_bwd_segments, gluon_bwd_residency). At the compiler's
# choice of 243-255 registers a thread (sm_90, GROUP 4) an SM holds 8 one-warp programs. H200, Vim-Ti training from
# CUDA graphs, two runs (docs/RESULTS.md, session 16): 11 segments (1024^2, batch 8: 2112 programs, 2 waves; 1248^2,
# batch 4: 1056, 1 wave) ran at 150.4 / 150.3 and 91.54 / 91.55 img/s, against 136.1 / 136.0 and 81.95 / 82.0 with
# the earlier rule's 8 (1.45 / 0.73 waves) and 143.4 / 88.4 with 16.
# GLUON_BWD_MAX_REGISTERS caps the walk's registers a thread (None: the compiler's choice, taken as 255 for the cut).
# More resident programs did not pay: H200, Vim-Ti training from CUDA graphs, img/s at 1024^2 batch 8 / 1248^2 batch
# 4, each cap twice in one run (docs/RESULTS.md, session 17): none 150.1 / 91.6, 168 (12 an SM) 137.0 / 88.3, 144
# (14) 113.0 / 83.3, 128 (15) 120.0 / 75.2. Compiled for sm_90 with the GPU's Triton 3.6, the caps spill 232 / 336
# / 416 bytes and add 8-14% to the loop's instructions (session 18; session 17 counted local memory only and saw none)
GLUON_BWD_MAX_REGISTERS = None
# Loading a chunk's operands into registers while the chunk before it is walked did not pay either (the same runs,
# two each, session 17: summaries and walk 142.9 / 89.9, summaries only 150.3 / 94.5, neither 152.7 / 95.2; the
# summaries' waits on loads fell from 2.5 to 0.46 cycles an instruction, their time did not: 191 -> 189 us)
GLUON_BWD_MAX_SEGMENTS = 16
# the walk backward's summaries (the dh each later segment sends back) are taken in this many pieces a segment, a
# program each (ncu, H200, 1024^2 batch 8, one piece: 191 us a layer for 1920 one-warp programs, 18% of the warp
# slots occupied, stalled on latencies). H200, Vim-Ti training from CUDA graphs, img/s at 1024^2 batch 8 / 1248^2
# batch 4, two runs each (docs/RESULTS.md, session 17): 1 piece 156.6 / 94.6, 2 157.1 / 97.4, 4 157.1 / 96.9
GLUON_BWD_SUMMARY_PIECES = 2
# Gluon forward walk (fused_bimamba_gluon). Both passes stage STAGE tokens at a time through shared
# memory, the next group's loads in flight meanwhile. Loaded ahead into registers instead (B and C are 32
# registers a token in every lane; session 7's first version), the output pass took 125 registers with 2
# tokens in flight and waited on its loads (ncu, H200, B = 16, L = 4097: 455 us, long-scoreboard stalls 3.8
# cycles an instruction, XU pipe 49 % busy; staged: 337 us, 67 %); 4 took 226 registers. The state pass,
# loaded 4 ahead, ran at 81 % of the XU pipe; staged, Vim-Ti's inference gained 1.3 % / 2.1 % at
# 1024^2 / 1248^2 (docs/RESULTS.md, session 7).
GLUON_STATE_PASS_STAGE = 8
GLUON_OUTPUT_PASS_STAGE = 8
# softplus's ln(1 + e) as a polynomial on the FMA pipe (fused_bimamba_gluon.LOG1P_Q, relative error 2.0e-7)
# instead of MUFU.LG2: one MUFU a token less in both passes (17 instead of 18), 6-8 instructions more; H200,
# Vim-Ti with CUDA graphs, two runs each: +3.1% / +3.4% / +2.2% images/s at 1024^2 / 1248^2 / 224^2
GLUON_SOFTPLUS_POLY = True
# the output pass's sum over the states a token (y) as this many chains of fused multiply-adds (0: gl.sum), as
# GLUON_BWD_SUM_CHAINS below; with a channel a lane (SPLIT 1) only. H200, Vim-Ti inference from CUDA graphs, img/s
# at 224^2 (128) / 1024^2 (16) / 1248^2 (8), two runs each (docs/RESULTS.md, session 18): gl.sum (one chain in Triton
# 3.6) 21974 / 839.1 / 517.8 and 21960 / 839.4 / 518.5; 2 chains 21838 / 835.9 / 517.9 and 21794 / 836.1 / 517.5;
# 4 chains 21469 / 823.1 / 508.4 and 21468 / 823.1 / 508.2
GLUON_FWD_SUM_CHAINS = 0
# the same choice for the Gluon walk backward and its summaries, where the FMA pipe is the busier one (ncu, H200,
# 1024^2 batch 8: the walk backward's FMA pipe 37% of its peak, 20 MUFU a token and lane of 520 instructions): on
# MUFU there (2% fewer instructions in the walk's loop), H200, Vim-Ti training from CUDA graphs at 1024^2 batch 8,
# two runs each: 159.51 / 159.52 img/s against 158.81 / 158.65 (docs/RESULTS.md, session 17)
GLUON_BWD_SOFTPLUS_POLY = False
# the walk backward's three sums over the states a token (y, dh B, the step's gradient) as this many independent chains
# of fused multiply-adds (fused_bimamba_gluon._sum_states; N = 16); 0: gl.sum, one chain in Triton 3.6, a tree in 3.8.
# The walk's token steps take their decays and steps from the group's second walk (session 18): with gl.sum that
# spilled (96 bytes, sm_90, Triton 3.6), with 4 chains less (32). H200, Vim-Ti training from CUDA graphs, img/s at
# 1024^2 batch 8 / 1248^2 batch 4, two runs each (docs/RESULTS.md, session 18): the kernels before 159.3 / 98.9 and
# 159.5 / 98.9; gl.sum 157.6 / 97.6 and 157.7 / 97.6; 2 chains 159.5 / 99.1 and 159.6 / 99.0; 4 chains 160.5 /
# 99.7 and 160.6 / 99.8.
# In a second call: before 160.4 / 99.5 (twice), before with 4 chains 159.6 / 98.8 (twice), 4 chains 161.7 / 100.3
# and 161.7 / 100.2
GLUON_BWD_SUM_CHAINS = 4
# gate and sum of the two directions (_gate_sum_kernel): (tokens, channels) a program
GATE_BLOCK_L, GATE_BLOCK_E = 32, 64
# the mixer's inference tail, z GEMM + gate + out_proj in one kernel (_gate_out_proj_kernel): rows of (B L) a
# program, channels a step, warps, pipeline stages. H100, bf16, D = 192, E = 384, 24 configs (docs/RESULTS.md,
# session 11): 64 x 32 on 4 warps, 3 stages took 0.71x / 0.67x / 0.89x the unfused tail's time at B L = 64 x 4097 /
# 16 x 4097 / 128 x 197; 64 x 64, 2 stages 1.08x / 1.03x / 1.15x. Smaller where shared memory is short
# (_tail_configs)
OUT_BLOCK_M, OUT_BLOCK_K, OUT_NUM_WARPS, OUT_NUM_STAGES = 64, 32, 4, 3
# the tail kernel for fp32 weights too: its IEEE fp32 dots run without tensor cores, in few programs at small
# batches: H200, Vim-Ti at 512^2, batch 1, fp32: 2.37 ms a layer, 97% of the forward (docs/RESULTS.md, session 13)
TAIL_FUSED_FP32 = False
INSTALL_HINT = "install Triton with `pip install triton` (it ships with CUDA builds of torch)"


@lru_cache(maxsize=None)
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install raising anything at import
        return False
    return True


@lru_cache(maxsize=None)
def _gluon_importable() -> bool:
    try:
        from . import fused_bimamba_gluon  # noqa: F401
    except Exception:  # no triton.experimental.gluon, or one whose API this module does not match
        return False
    return True


def load_gluon_kernels():
    """The Gluon kernel module (see :func:`forward_kind`)."""
    from . import fused_bimamba_gluon
    return fused_bimamba_gluon


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def fused_available(device: torch.device) -> bool:
    """True when Triton imports and can run on ``device``: a CUDA device, or any under ``TRITON_INTERPRET=1``."""
    if not _triton_importable():
        return False
    return _interpreting() or torch.device(device).type == "cuda"


def load_fused_kernels():
    """The Triton kernel module; raises ImportError naming the install command when Triton is missing."""
    if not _triton_importable():
        raise ImportError(f"the fused scan needs Triton, which is not importable; {INSTALL_HINT}")
    from . import fused_bimamba_kernels
    return fused_bimamba_kernels


# ------------------------------------------------------------------------------------------ autograd ops


def _conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (B, E, L) -> u (2, B, E, L), channels-last in memory ((2, B, L, E): rows of the x_proj GEMM, and
    coalesced per-token loads for the scan)."""
    k = load_fused_kernels()
    batch, channels, length = x.shape
    u = x.new_empty(2, batch, length, channels).transpose(2, 3)
    grid = (_cdiv(length, CONV_BLOCK_L), _cdiv(channels, CONV_BLOCK_E), batch)
    k._conv_fwd_kernel[grid](x, weight, bias, u, channels, length, *x.stride(), *u.stride(),
                             W=weight.shape[-1], BLOCK_E=CONV_BLOCK_E, BLOCK_L=CONV_BLOCK_L, FAST=not _interpreting(),
                             num_warps=CONV_NUM_WARPS)
    return u


def _conv_backward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad_u: torch.Tensor,
                   gx: torch.Tensor, gz: Optional[torch.Tensor] = None, dz_terms: Sequence[torch.Tensor] = ()):
    """Gradients of :func:`_conv_forward`: writes x's into ``gx`` (B, E, L, any strides, x's dtype) and
    returns those of ``weight`` and ``bias``. With ``gz``, also writes the sum of ``dz_terms`` (one or two
    (B, E, L) tensors of the same strides) into it, in the kernel that writes gx."""
    kind = os.environ.get("VIM_FUSED_CONV_BACKWARD", "triton")
    if kind not in ("triton", "torch"):
        raise ValueError(f"VIM_FUSED_CONV_BACKWARD must be 'triton' or 'torch', got {kind!r}")
    if kind == "torch":  # the PyTorch twin (A/B timing)
        with torch.enable_grad():
            xf = x.detach().float().requires_grad_()
            w = weight.detach().requires_grad_()
            b = bias.detach().requires_grad_()
            u = _bidirectional_conv_silu_torch(xf, w, b)
            g_x, gw, gb = torch.autograd.grad(u, (xf, w, b), grad_u.float())
        gx.copy_(g_x)
        if gz is not None:
            _sum_into(gz, dz_terms)
        return gw, gb
    k = load_fused_kernels()
    batch, channels, length = x.shape
    width = weight.shape[-1]
    # gp = grad of the pre-activations (2, B, E, L) fp32, channels-last like u; then gx from its taps
    gp = torch.empty(2, batch, length, channels, device=x.device, dtype=torch.float32).transpose(2, 3)
    gw = torch.zeros_like(weight, dtype=torch.float32)
    gb = torch.zeros_like(bias, dtype=torch.float32)
    block_e, block_l, tiles, warps = CONV_BWD_PRE_TILE
    grid = (_cdiv(length, block_l * tiles), _cdiv(channels, block_e), batch)
    k._conv_bwd_pre_kernel[grid](x, weight, bias, grad_u, gp, gw, gb, channels, length, *x.stride(),
                                 *grad_u.stride(), *gp.stride(), W=width, BLOCK_E=block_e, BLOCK_L=block_l,
                                 TILES=tiles, FAST=not _interpreting(), num_warps=warps)
    terms = tuple(dz_terms) if gz is not None else ()
    if gz is not None and (len(terms) not in (1, 2) or any(t.stride() != terms[0].stride() for t in terms)):
        raise ValueError("dz_terms: one or two tensors of the same strides")
    dz0, dz1 = (terms * 2)[:2] if terms else (gp, gp)  # dummy pointers without gz
    z_strides = gz.stride() if gz is not None else gx.stride()
    grid = (_cdiv(length, CONV_BWD_BLOCK_L), _cdiv(channels, CONV_BWD_BLOCK_E), batch)
    k._conv_bwd_x_kernel[grid](gp, weight, gx, dz0, dz1, gz if gz is not None else gx, channels, length,
                               *gp.stride(), *gx.stride(), *dz0.stride()[-3:], *z_strides, W=width,
                               BLOCK_E=CONV_BWD_BLOCK_E, BLOCK_L=CONV_BWD_BLOCK_L, DZ_TERMS=len(terms),
                               num_warps=CONV_BWD_NUM_WARPS)
    return gw.to(weight.dtype), gb.to(bias.dtype)


class _BidirectionalConvSiLU(torch.autograd.Function):
    """x (B, E, L) -> u (2, B, E, L): silu(causal conv) and silu(anti-causal conv, taps reversed)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight, bias)
        return _conv_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        x, weight, bias = ctx.saved_tensors
        gx = x.new_empty(x.shape[0], x.shape[2], x.shape[1]).transpose(1, 2)
        gw, gb = _conv_backward(x, weight, bias, grad_u, gx)
        return gx, gw, gb


def _bidirectional_conv_silu_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """PyTorch twin of the conv kernel (same layouts); its autograd is the gradient with
    ``VIM_FUSED_CONV_BACKWARD=torch``."""
    channels, length = x.shape[1], x.shape[2]
    width = weight.shape[-1]
    w = weight.to(x.dtype)
    b = bias.to(x.dtype)
    pre_f = F.conv1d(x, w[0].unsqueeze(1), b[0], padding=width - 1, groups=channels)[..., :length]
    # anti-causal: output t sees x[t .. t + W - 1], tap k on x[t + W - 1 - k]
    pre_b = F.conv1d(x, w[1].flip(-1).unsqueeze(1), b[1], padding=width - 1, groups=channels)[..., width - 1:]
    return torch.stack([F.silu(pre_f), F.silu(pre_b)])


def on_device_of(t: torch.Tensor):
    """A context in which ``t``'s GPU is the current device. Triton launches a kernel on the current device
    whatever its arguments' device, so each public entry of the fused ops runs under this: a model on
    ``cuda:1`` works while ``cuda:0`` is current. A no-op context where the device is already current (or
    ``t`` is not on a GPU)."""
    if t.is_cuda and t.device.index != torch.cuda.current_device():
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def gluon_sum_chains(chains: int, split: int) -> int:
    """The CHAINS a Gluon walk is compiled with: ``chains`` (GLUON_FWD_SUM_CHAINS / GLUON_BWD_SUM_CHAINS) where a
    thread holds a channel's states (SPLIT 1), else 0 (gl.sum, whose sums cross lanes)."""
    return chains if split == 1 else 0


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def gluon_bwd_segments(programs: int, length: int, sms: int, per_sm: int = 8) -> int:
    """The Gluon walk backward's cut when not given: the number of segments S (at most GLUON_BWD_MAX_SEGMENTS,
    none shorter than SEGMENT_MIN_TOKENS tokens) whose launch of ``programs`` x S programs (channel blocks x batch x
    2 directions, a segment each) takes the least time in whole waves of the ``sms`` x ``per_sm`` programs the GPU
    holds at once (:func:`gluon_bwd_residency`): ``ceil(programs S / slots) / S``, the fewer segments on a tie. A
    part-filled last wave costs as much as a full one, as the cut's sweep measured (session 16)."""
    slots = max(1, sms * per_sm)
    best, best_cost = 1, None
    for segments in range(1, max(1, min(GLUON_BWD_MAX_SEGMENTS, length // SEGMENT_MIN_TOKENS)) + 1):
        cost = _cdiv(programs * segments, slots) / segments
        if best_cost is None or cost < best_cost * (1 - 1e-9):
            best, best_cost = segments, cost
    return best


def gluon_bwd_shared_memory(chunk: int, state: int, itemsizes: Sequence[int]) -> int:
    """Bytes of shared memory a Gluon walk-backward program takes: the chunk's staged operands (u, dt, z and the
    output gradient in their ``itemsizes``; B and C fp32) and the (N, BLOCK_E) fp32 tile of the sums over the
    channels, BLOCK_E = 32 NUM_WARPS / SPLIT (sm_90 compile: 14336 bytes at CHUNK 32, N 16, bf16, one warp; 9216 at
    SPLIT 2)."""
    block_e = 32 * GLUON_BWD_NUM_WARPS // GLUON_BWD_SPLIT
    return chunk * block_e * sum(itemsizes) + 2 * chunk * state * 4 + state * block_e * 4


# registers and bytes of shared memory an sm_90 SM has (the defaults where torch does not report them)
SM90_REGISTERS, SM90_SHARED = 65536, 233472


def gluon_bwd_residency(registers: Optional[int], shared: int, regs_per_sm: int = SM90_REGISTERS,
                        shared_per_sm: int = SM90_SHARED, max_per_sm: int = 32) -> int:
    """Programs of GLUON_BWD_NUM_WARPS warps of the Gluon walk backward an SM holds at once: by registers
    (``registers`` a thread, None = 255, allocated in steps of 8), by shared memory (``shared`` bytes a program and
    the 1 KiB the driver reserves a block) and at most ``max_per_sm``; sm_90 sizes by default."""
    regs = -(-(registers or 255) // 8) * 8
    by_regs = regs_per_sm // (regs * 32 * GLUON_BWD_NUM_WARPS)
    by_shared = shared_per_sm // (shared + 1024)
    return max(1, min(by_regs, by_shared, max_per_sm))


@lru_cache(maxsize=None)
def _sm_resources(device: torch.device) -> Tuple[int, int, int]:
    """The device's SMs, and the registers and bytes of shared memory of one SM (sm_90's where torch does not
    report them)."""
    p = torch.cuda.get_device_properties(device)
    return (p.multi_processor_count, getattr(p, "regs_per_multiprocessor", SM90_REGISTERS),
            getattr(p, "shared_memory_per_multiprocessor", SM90_SHARED))


def fused_settings() -> dict:
    """The fused backend's tiles, cuts and kernel choices in effect (what benchmark files record)."""
    return dict(block_e=DEFAULT_BLOCK_E, num_warps=DEFAULT_NUM_WARPS, chunk=DEFAULT_CHUNK,
                segment_target_programs=SEGMENT_TARGET_PROGRAMS, segment_min_tokens=SEGMENT_MIN_TOKENS,
                max_segments=MAX_SEGMENTS, state_pass_pieces=STATE_PASS_PIECES,
                head_segment_early=[HEAD_SEGMENT_EARLY, HEAD_MAX_SEGMENTS, HEAD_MIN_PROGRAMS, HEAD_STATE_PASS_PIECES],
                forward=forward_kind(),
                gluon_stages=[GLUON_STATE_PASS_STAGE, GLUON_OUTPUT_PASS_STAGE],
                gluon_softplus_poly=[GLUON_SOFTPLUS_POLY, GLUON_BWD_SOFTPLUS_POLY],
                gluon_sum_chains=[GLUON_FWD_SUM_CHAINS, GLUON_BWD_SUM_CHAINS],
                backward=backward_kind(),
                bwd_walk_block_e=BWD_WALK_BLOCK_E, bwd_walk_num_warps=BWD_WALK_NUM_WARPS,
                bwd_segment_target_programs=BWD_SEGMENT_TARGET_PROGRAMS, backward_walk=backward_walk_kind(),
                gluon_bwd=dict(num_warps=GLUON_BWD_NUM_WARPS, group=GLUON_BWD_GROUP, split=GLUON_BWD_SPLIT,
                               max_registers=GLUON_BWD_MAX_REGISTERS, max_segments=GLUON_BWD_MAX_SEGMENTS,
                               summary_pieces=GLUON_BWD_SUMMARY_PIECES),
                conv_tile=[CONV_BLOCK_E, CONV_BLOCK_L, CONV_NUM_WARPS],
                conv_bwd_tile=[CONV_BWD_BLOCK_E, CONV_BWD_BLOCK_L, CONV_BWD_NUM_WARPS],
                conv_bwd_pre_tile=list(CONV_BWD_PRE_TILE),
                conv_backward=os.environ.get("VIM_FUSED_CONV_BACKWARD", "triton"),
                inference_tail=[OUT_BLOCK_M, OUT_BLOCK_K, OUT_NUM_WARPS, OUT_NUM_STAGES],
                tail_fused_fp32=TAIL_FUSED_FP32,
                bc_dtype=dict(training=bc_dtype(True), inference=bc_dtype(False)))


def default_segments(programs: int, length: int, target: Optional[int] = None) -> int:
    """Segments per walk when not given: enough for ~``target`` programs (SEGMENT_TARGET_PROGRAMS), none
    shorter than SEGMENT_MIN_TOKENS tokens, at most MAX_SEGMENTS. ``programs``: channel blocks x batch x
    2 directions."""
    want = max(1, round((target or SEGMENT_TARGET_PROGRAMS) / max(programs, 1)))
    return max(1, min(want, MAX_SEGMENTS, length // SEGMENT_MIN_TOKENS))


def forward_segments(programs: int, length: int) -> int:
    """The forward walk's default cut: :func:`default_segments`, and one segment more where segment 0 of
    that cut would run beside the state pass (:func:`_head_early`; the launch after it then runs the other
    segments: as many programs as the target), within the SEGMENT_MIN_TOKENS floor."""
    segments = default_segments(programs, length)
    if segments > 1 and _head_early(segments + 1, programs):
        segments = min(segments + 1, length // SEGMENT_MIN_TOKENS)
    return segments


def _head_early(segments: int, programs: int) -> bool:
    """Whether a walk of ``segments`` segments, ``programs`` programs a segment (channel blocks x batch x 2
    directions), runs segment 0 beside the state pass (HEAD_SEGMENT_EARLY): for 2 ... HEAD_MAX_SEGMENTS segments
    of at least HEAD_MIN_PROGRAMS programs."""
    return HEAD_SEGMENT_EARLY and 2 <= segments <= HEAD_MAX_SEGMENTS and programs >= HEAD_MIN_PROGRAMS


def _scan_forward(u, dt, Bm, Cm, z, A, D, dt_bias, block_e: int, chunk: int, num_warps: int,
                  segments: Optional[int], store_states: bool):
    """The scan stage's forward: ``(y_fwd + y_bwd) * silu(z) / 2`` (B, E, L) and, with ``store_states``,
    the chunk-entry states (2, B, E, n_chunks, N) fp32 the backward recomputes from (else None)."""
    y, states = _walks(u, dt, Bm, Cm, A, D, dt_bias, z.dtype, block_e, chunk, num_warps, segments, store_states)
    return _gate_sum(y, z), states


def _walks(u, dt, Bm, Cm, A, D, dt_bias, out_dtype: torch.dtype, block_e: int, chunk: int, num_warps: int,
           segments: Optional[int], store_states: bool, y_into_dt: bool = False):
    """Both directions' walks: their outputs ``y`` (2, B, E, L) before the gate, channels-last, in
    ``out_dtype``, and the chunk-entry states as :func:`_scan_forward` returns them.

    ``y_into_dt``: the walks write their outputs over dt where its layout and dtype allow (one fewer
    (2, B, L, E) tensor alive; the caller's dt is lost). Safe because the program that writes a token's
    outputs is the only one that reads that token's dt, and it has read it by then (the segment-state
    pass, which reads dt too, runs before, or beside segment 0's walk, whose tokens it does not read)."""
    k = load_fused_kernels()
    _, batch, channels, length = u.shape
    state = A.shape[-1]
    n_chunks = _cdiv(length, chunk)
    programs = _cdiv(channels, block_e) * batch * 2  # a segment's
    if segments is None:
        segments = forward_segments(programs, length)
    segments = max(1, min(segments, length))
    pieces = max(1, HEAD_STATE_PASS_PIECES if _head_early(segments, programs) else STATE_PASS_PIECES)
    sub_len = _cdiv(length, segments * pieces)  # state-pass piece; a segment is `pieces` of them
    seg_len = sub_len * pieces
    segments = _cdiv(length, seg_len)  # no empty segment
    if segments == 1:
        pieces = 1
    head = _head_early(segments, programs)
    # per-direction outputs (before the gate), channels-last like u; _gate_sum gates and sums them into
    # the (B, L, E) rows the caller's out_proj reads without a copy
    if y_into_dt and dt.dtype == out_dtype and dt.stride() == y_strides(batch, channels, length):
        y = dt
    else:
        y = torch.empty(2, batch, length, channels, device=u.device, dtype=out_dtype).transpose(2, 3)
    states = (torch.empty(2, batch, channels, n_chunks, state, device=u.device, dtype=torch.float32)
              if store_states else y)  # dummy pointer when not stored
    seg_h = seg_dt = y  # dummy pointers for one segment
    if segments > 1:
        f32 = dict(device=u.device, dtype=torch.float32)
        seg_h = torch.empty(2, batch, channels, segments * pieces, state, **f32)
        seg_dt = torch.empty(2, batch, channels, segments * pieces, **f32)
    grid = (_cdiv(channels, block_e), batch)  # and 2 x the launch's segments (pieces)
    strides = (*u.stride(), *dt.stride(), *Bm.stride(), *Cm.stride(), *y.stride())

    def args(A_, first: int, progs: int):
        # the kernel's arguments with A (2, E, N) in the memory order of A_, for `progs` segments (pieces in
        # the state pass) of each direction from `first` on
        return (u, dt, Bm, Cm, A_, D, dt_bias, y, states, seg_h, seg_dt, channels, length, n_chunks,
                seg_len, sub_len, first, progs, *A_.stride(), *strides)

    def walk(kind: str):
        if kind == "gluon":
            kernel = load_gluon_kernels()._scan_fwd_gluon_kernel
            split = 32 * num_warps // block_e  # lanes a channel's states are spread over
            common = dict(NUM_WARPS=num_warps, SPLIT=split, POLY=GLUON_SOFTPLUS_POLY)
            state_pass = dict(common, STAGE=GLUON_STATE_PASS_STAGE)
            output_pass = dict(common, STAGE=GLUON_OUTPUT_PASS_STAGE,
                               CHAINS=gluon_sum_chains(GLUON_FWD_SUM_CHAINS, split))
        else:
            kernel = k._scan_fwd_kernel
            state_pass = output_pass = dict(FAST=not _interpreting())

        def outputs(first: int, progs: int):
            kernel[grid + (2 * progs,)](
                *args(A, first, progs), N=state, BLOCK_E=block_e, CHUNK=chunk, STORE_STATES=store_states,
                SEGMENTS=segments, SUB=pieces, WRITE_Y=True, HEAD=head, num_warps=num_warps, **output_pass)

        def states_of(first: int, progs: int):  # end state (from zero) and total step of each piece
            if progs > 0:  # A read with the channels contiguous (see the kernel on A's layout)
                kernel[grid + (2 * progs,)](
                    *args(A.transpose(1, 2).contiguous().transpose(1, 2), first, progs), N=state,
                    BLOCK_E=block_e, CHUNK=chunk, STORE_STATES=False, SEGMENTS=segments, SUB=pieces,
                    WRITE_Y=False, num_warps=num_warps, **state_pass)

        if segments == 1:
            outputs(0, 1)
        elif not head:  # the pieces of every segment but the last, then every segment
            states_of(0, (segments - 1) * pieces)
            outputs(0, segments)
        else:  # segment 0's walk beside the state pass of segments 1 .. S - 2, then segments 1 .. S - 1
            with _beside(u.device) as side:
                with side():
                    outputs(0, 1)
                states_of(pieces, (segments - 2) * pieces)
            outputs(1, segments - 1)

    kind = forward_kind(block_e, num_warps)
    variant = (store_states, segments > 1, head, u.dtype, Bm.dtype, state, block_e, num_warps, GLUON_FWD_SUM_CHAINS)
    if not _gluon_first(walk, kind, variant, "VIM_FUSED_FORWARD", backward=False):
        walk("triton")
    return y, (states if store_states else None)


class _beside:
    """``with _beside(device) as side: with side(): a(); b()``: on CUDA, ``a`` runs on a second stream (forked
    from the current one, joined back at the end) so that its kernels may run beside ``b``'s; elsewhere (the
    interpreter) all in order. Works under CUDA graph capture (the fork and join become graph edges). One second
    stream per (device, calling stream), so that callers on different streams do not queue on one side stream."""

    _streams = {}

    def __init__(self, device: torch.device):
        self.device = device if device.type == "cuda" and not _interpreting() else None

    def __enter__(self):
        if self.device is None:
            return contextlib.nullcontext
        self.main = torch.cuda.current_stream(self.device)
        key = (self.main.device_index, self.main.stream_id)
        self.stream = _beside._streams.get(key)
        if self.stream is None:
            self.stream = _beside._streams[key] = torch.cuda.Stream(self.device)
        self.stream.wait_stream(self.main)
        return lambda: torch.cuda.stream(self.stream)

    def __exit__(self, *exc):
        if self.device is not None:
            self.main.wait_stream(self.stream)
        return False


def y_strides(batch: int, channels: int, length: int) -> tuple:
    """Strides of the walks' channels-last (2, B, E, L) output: (2, B, L, E) in memory."""
    return (batch * length * channels, length * channels, 1, channels)


def _gate_sum(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``(y[0] + y[1]) * silu(z) / 2`` (B, E, L) in z's dtype, channels-last ((B, L, E) rows for out_proj)."""
    k = load_fused_kernels()
    _, batch, channels, length = y.shape
    out = z.new_empty(batch, length, channels).transpose(1, 2)
    grid = (_cdiv(length, GATE_BLOCK_L), _cdiv(channels, GATE_BLOCK_E), batch)
    k._gate_sum_kernel[grid](y, z, out, channels, length, *y.stride(), *z.stride(), *out.stride(),
                             BLOCK_L=GATE_BLOCK_L, BLOCK_E=GATE_BLOCK_E, FAST=not _interpreting(), num_warps=4)
    return out


def _scan_backward(u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out, chunk: int, bwd_segments: Optional[int]):
    """Gradients of :func:`_scan_forward`: du, ddt (2, B, E, L) in u's / dt's dtype; dB, dC (2, B, N, L),
    dA (2, E, N), dD, dbias (2, E) fp32; and dz as a tuple of fp32 (B, E, L) terms to be summed (one per
    direction with the walk backward, which writes them channels-last without atomics)."""
    k = load_fused_kernels()
    _, batch, channels, length = u.shape
    state = A.shape[-1]
    n_chunks = states.shape[3]
    f32 = dict(device=u.device, dtype=torch.float32)
    dB = torch.zeros(2, batch, state, length, **f32)
    dC = torch.zeros(2, batch, state, length, **f32)
    dA = torch.zeros(2, channels, state, **f32)
    dD = torch.zeros(2, channels, **f32)
    dbias = torch.zeros(2, channels, **f32)
    strides = (*u.stride(), *dt.stride(), *Bm.stride(), *Cm.stride(), *z.stride(), *grad_out.stride())
    if backward_kind() == "walk":
        walk_kind = backward_walk_kind(state, chunk)
        block_e = 32 * GLUON_BWD_NUM_WARPS // GLUON_BWD_SPLIT if walk_kind == "gluon" else BWD_WALK_BLOCK_E
        fast = not _interpreting()
        # channels-last like u; dz per direction, summed by the caller (no atomics on the big tensors)
        du, ddt, dz2 = (torch.empty(2, batch, length, channels, device=u.device, dtype=t).transpose(2, 3)
                        for t in (u.dtype, dt.dtype, torch.float32))
        segments = bwd_segments
        if segments is None and walk_kind == "gluon":
            shared = gluon_bwd_shared_memory(chunk, state, [t.element_size() for t in (u, dt, z, grad_out)])
            sms, regs_per_sm, shared_per_sm = _sm_resources(u.device)
            per_sm = gluon_bwd_residency(GLUON_BWD_MAX_REGISTERS, shared, regs_per_sm, shared_per_sm)
            segments = gluon_bwd_segments(_cdiv(channels, block_e) * batch * 2, length, sms, per_sm)
        elif segments is None:
            segments = default_segments(_cdiv(channels, block_e) * batch * 2, length, BWD_SEGMENT_TARGET_PROGRAMS)
        seg_chunks = _cdiv(n_chunks, max(1, min(segments, n_chunks)))
        segments = _cdiv(n_chunks, seg_chunks)  # no empty segment
        grid = (_cdiv(channels, block_e), batch, 2 * segments)
        seg_dh = seg_dt = dA  # dummy pointers for one segment
        pieces = GLUON_BWD_SUMMARY_PIECES if walk_kind == "gluon" else 1
        if segments > 1:  # the dh each later segment (piece) sends back, and its total step
            seg_dh = torch.empty(2, batch, channels, segments * pieces, state, **f32)
            seg_dt = torch.empty(2, batch, channels, segments * pieces, **f32)
        slots = chunk // GLUON_BWD_GROUP if walk_kind == "gluon" else chunk  # the Gluon walk keeps one in GROUP
        scratch = torch.empty(grid[0] * batch * 2 * segments * slots * block_e * state, **f32)
        seg_args = (dt, Cm, z, A, dt_bias, grad_out, seg_dh, seg_dt, channels, length, n_chunks, seg_chunks,
                    *dt.stride(), *Cm.stride(), *z.stride(), *grad_out.stride())
        walk_args = (u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out, du, ddt, dB, dC, dz2, dA, dD, dbias, scratch,
                     channels, length, n_chunks, *strides, *du.stride(), seg_dh, seg_dt, seg_chunks)
        # the summaries: a channel a lane in the Gluon walk's (32 NUM_WARPS channels a program)
        seg_block_e = 32 * GLUON_BWD_NUM_WARPS if walk_kind == "gluon" else block_e
        seg_grid = (_cdiv(channels, seg_block_e), batch, 2 * (segments - 1) * pieces)

        def walk(kind: str):
            if kind == "gluon":
                g = load_gluon_kernels()
                opts = dict(N=state, CHUNK=chunk, SEGMENTS=segments, NUM_WARPS=GLUON_BWD_NUM_WARPS,
                            POLY=GLUON_BWD_SOFTPLUS_POLY, num_warps=GLUON_BWD_NUM_WARPS)
                if segments > 1:
                    g._scan_bwd_seg_gluon_kernel[seg_grid](*seg_args, PIECES=pieces, **opts)
                cap = {} if GLUON_BWD_MAX_REGISTERS is None else dict(maxnreg=GLUON_BWD_MAX_REGISTERS)
                g._scan_bwd_walk_gluon_kernel[grid](*walk_args, GROUP=GLUON_BWD_GROUP, PIECES=pieces,
                                                    CHAINS=gluon_sum_chains(GLUON_BWD_SUM_CHAINS, GLUON_BWD_SPLIT),
                                                    SPLIT=GLUON_BWD_SPLIT, **opts, **cap)
                return
            opts = dict(N=state, BLOCK_E=block_e, CHUNK=chunk, SEGMENTS=segments, FAST=fast,
                        num_warps=BWD_WALK_NUM_WARPS)
            if segments > 1:
                k._scan_bwd_seg_kernel[seg_grid](*seg_args, **opts)
            k._scan_bwd_walk_kernel[grid](*walk_args, **opts)

        variant = ("bwd", segments > 1, u.dtype, dt.dtype, z.dtype, grad_out.dtype, Bm.dtype, state, chunk,
                   GLUON_BWD_GROUP, GLUON_BWD_MAX_REGISTERS, pieces, GLUON_BWD_SOFTPLUS_POLY, GLUON_BWD_SUM_CHAINS,
                   GLUON_BWD_SPLIT)
        if not _gluon_first(walk, walk_kind, variant, "VIM_FUSED_BACKWARD_WALK", backward=True):
            # the Triton walk backward, with its own tile, cut and scratch
            return _scan_backward(u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out, chunk, bwd_segments)
        dz_terms = (dz2[0], dz2[1])
    else:
        du = torch.empty(2, batch, channels, length, device=u.device, dtype=u.dtype)
        ddt = torch.empty(2, batch, channels, length, device=u.device, dtype=dt.dtype)
        dz = torch.zeros(batch, channels, length, **f32)
        grid = (_cdiv(channels, BWD_BLOCK_E), batch, 2)
        k._scan_bwd_kernel[grid](
            u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out,
            du, ddt, dB, dC, dz, dA, dD, dbias,
            channels, length, n_chunks, *strides,
            N=state, BLOCK_E=BWD_BLOCK_E, CHUNK=chunk, FAST=not _interpreting(), num_warps=8,
        )
        dz_terms = (dz,)
    return du, ddt, dB, dC, dz_terms, dA, dD, dbias


def _sum_into(out: torch.Tensor, terms) -> torch.Tensor:
    """``out`` = the sum of ``terms``, cast to out's dtype in the same kernel."""
    if len(terms) == 2:
        return torch.add(terms[0], terms[1], out=out)
    return out.copy_(terms[0])


class _BidirectionalScan(torch.autograd.Function):
    """(u, dt, B, C, z, A, D, dt_bias) -> (y_fwd + y_bwd) * silu(z) / 2, (B, E, L): the scan stage alone."""

    @staticmethod
    def forward(ctx, u, dt, Bm, Cm, z, A, D, dt_bias, block_e: int, chunk: int, num_warps: int,
                segments: Optional[int], bwd_segments: Optional[int] = None):
        store_states = any(ctx.needs_input_grad[:8])
        out, states = _scan_forward(u, dt, Bm, Cm, z, A, D, dt_bias, block_e, chunk, num_warps, segments,
                                    store_states)
        if store_states:
            ctx.save_for_backward(u, dt, Bm, Cm, z, A, D, dt_bias, states)
        ctx.chunk = chunk
        ctx.bwd_segments = bwd_segments
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        u, dt, Bm, Cm, z, A, D, dt_bias, states = ctx.saved_tensors
        du, ddt, dB, dC, dz_terms, dA, dD, dbias = _scan_backward(u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out,
                                                                  ctx.chunk, ctx.bwd_segments)
        dz = _sum_into(torch.empty_like(z), dz_terms)
        return (du, ddt, dB.to(Bm.dtype), dC.to(Cm.dtype), dz, dA.to(A.dtype), dD.to(D.dtype),
                dbias.to(dt_bias.dtype), None, None, None, None, None)


def _mixer_inputs(x, conv_w, conv_b, x_proj_w, dt_proj_w, dt_rank: int, d_state: int, grad: bool = True):
    """From the mixer's x (B, E, L) to the scan's operands: u = silu(conv) (2, B, E, L), the x_proj output
    ``x_dbl`` (2, B L, cols) with columns [dt (R) | 0 | B (N) | C (N) | 0] (B and C start on 16-byte
    boundaries, so the walk reads each token's B and C with vector loads), the raw step dt (2, B, E, L),
    and B, C (2, B, N, L) as the walk reads them (:func:`bc_dtype`; ``grad``: a backward will follow). All
    channels-last views."""
    u = _conv_forward(x, conv_w, conv_b)
    return (u, *_projections(u, x_proj_w, dt_proj_w, dt_rank, d_state, grad))


def _projections(u, x_proj_w, dt_proj_w, dt_rank: int, d_state: int, grad: bool):
    """x_dbl, dt, B, C of :func:`_mixer_inputs` from u."""
    _, batch, channels, length = u.shape
    rows = u.transpose(2, 3).reshape(2, batch * length, channels)  # a view: (2, B L, E)
    x_dbl = torch.bmm(rows, x_proj_w.transpose(1, 2))
    return (x_dbl, *_step_and_bc(x_dbl, dt_proj_w, batch, length, dt_rank, d_state,
                                 bc_dtype(grad, d_state) == "float32"))


def _step_and_bc(x_dbl, dt_proj_w, batch: int, length: int, dt_rank: int, d_state: int, bc_float: bool):
    """dt, B, C of :func:`_mixer_inputs` from the x_proj output ``x_dbl`` (2, B L, cols); ``bc_float``: B and C as
    an fp32 copy (else views of x_dbl, :func:`bc_dtype`)."""
    channels = dt_proj_w.shape[1]
    b_col, c_col, _ = _xproj_columns(dt_rank, d_state)
    # dt_proj reads the dt columns with their zero padding (dt_proj_w is padded to match, _dtproj_weight)
    dt = torch.bmm(x_dbl[..., :b_col], dt_proj_w.transpose(1, 2)).view(2, batch, length, channels).transpose(2, 3)
    # every lane loads the same B_t, C_t at every token
    bc = x_dbl[..., b_col:c_col + d_state]
    if bc_float:
        bc = bc.float()
    bc = bc.view(2, batch, length, -1).transpose(2, 3)
    return dt, bc[:, :, :d_state], bc[:, :, c_col - b_col:c_col - b_col + d_state]


def _weight_grad(grad: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """``grad[d]^T inp[d]`` for both directions: (2, M, n), (2, M, k) -> (2, n, k). One plain GEMM a
    direction: cuBLAS splits the long reduction over M = B L for those, not for a batched GEMM (H200,
    1024^2, batch 8: the batched x_proj weight gradient took 0.83 ms a layer, 16 % of a training step)."""
    out = torch.empty(2, grad.shape[-1], inp.shape[-1], device=grad.device,
                      dtype=torch.promote_types(grad.dtype, inp.dtype))
    for d in range(2):
        torch.mm(grad[d].t(), inp[d], out=out[d])
    return out


class _FusedMixer(torch.autograd.Function):
    """The fused op from the mixer's activations to its gated output, as one autograd node.

    (x, z, conv_w, conv_b, x_proj_w, dt_proj_w, A, D, dt_bias) -> ``(y_fwd + y_bwd) * silu(z) / 2``
    (B, E, L), weights as in :class:`FusedWeights`. With ``z`` None, ``x`` is the in_proj output xz
    (B, 2E, L) and its gradient is one tensor, channels-last: the conv backward and the dz sum write the
    two halves in place, where autograd would concatenate the halves' gradients (a copy of xz) and sum
    the several uses of u and of the x_proj output (an addition, zero fills). The backward adds the
    scan's du to the x_proj input gradient in the GEMM (``baddbmm``) and lays the dt, B and C gradients
    into one x_proj output gradient.

    ``recompute``: keep only x, z and the x_proj output for the backward, which recomputes u (the conv kernel),
    dt (dt_proj's GEMM) and the fp32 B, C (a cast) from them, the same values; else those are kept too
    (:func:`scan_fused_prepared`). ``in_proj_w`` (2E, D), with ``recompute`` and ``z`` None: ``x`` is the mixer's
    input (B, L, D) and the node applies in_proj itself; it keeps that input instead of xz, four times smaller for
    Vim (D = E / 2), and the backward recomputes xz with in_proj's GEMM and returns in_proj's gradients.
    ``x_from`` ``(fn, t)``, with ``in_proj_w``: ``fn(t)`` gives x again, the same values; the node keeps ``t``
    instead of x (a tensor kept anyway, the fp32 residual stream x is normalised from).
    """

    @staticmethod
    def forward(ctx, x, z, conv_w, conv_b, x_proj_w, dt_proj_w, A, D, dt_bias, dt_rank: int, d_state: int,
                block_e: int, chunk: int, num_warps: int, segments: Optional[int], bwd_segments: Optional[int],
                recompute: bool = False, in_proj_w: Optional[torch.Tensor] = None, x_from=None):
        ctx.x_again, source = x_from if x_from is not None else (None, x)
        if in_proj_w is not None:  # (z None and recompute: scan_fused_prepared checks)
            x = F.linear(x, in_proj_w).transpose(1, 2)  # xz (B, 2E, L): a view of the (B, L, 2E) rows
        joined = z is None
        if joined:
            x, z = x.chunk(2, dim=1)
        need = ctx.needs_input_grad
        store_states = any(need[:9]) or (in_proj_w is not None and need[17])
        u, x_dbl, dt, Bm, Cm = _mixer_inputs(x, conv_w, conv_b, x_proj_w, dt_proj_w, dt_rank, d_state, store_states)
        out, states = _scan_forward(u, dt, Bm, Cm, z, A, D, dt_bias, block_e, chunk, num_warps, segments,
                                    store_states)
        ctx.recompute, ctx.in_proj = recompute, in_proj_w is not None
        if store_states:
            kept = (x_dbl, states) if recompute else (u, x_dbl, dt, Bm, Cm, states)
            ctx.save_for_backward(*((source, in_proj_w) if ctx.in_proj else (x, z)), conv_w, conv_b, x_proj_w,
                                  dt_proj_w, A, D, dt_bias, *kept)
            ctx.bc_float = Bm.dtype == torch.float32 and x_dbl.dtype != torch.float32
        ctx.joined, ctx.dt_rank, ctx.d_state = joined, dt_rank, d_state
        ctx.chunk, ctx.bwd_segments = chunk, bwd_segments
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, z, conv_w, conv_b, x_proj_w, dt_proj_w, A, D, dt_bias, *kept = ctx.saved_tensors
        if ctx.in_proj:  # x is the mixer's input (or what it is made from) and z in_proj's weight: xz again
            hidden, in_proj_w = x if ctx.x_again is None else ctx.x_again(x), z
            x, z = F.linear(hidden, in_proj_w).transpose(1, 2).chunk(2, dim=1)
        if ctx.recompute:  # the forward's own kernels and GEMM on the same inputs
            x_dbl, states = kept
            u = _conv_forward(x, conv_w, conv_b)
            dt, Bm, Cm = _step_and_bc(x_dbl, dt_proj_w, x.shape[0], x.shape[2], ctx.dt_rank, ctx.d_state, ctx.bc_float)
        else:
            u, x_dbl, dt, Bm, Cm, states = kept
        need = ctx.needs_input_grad
        du, ddt, dB, dC, dz_terms, dA, dD, dbias = _scan_backward(u, dt, Bm, Cm, z, A, D, dt_bias, states, grad_out,
                                                                  ctx.chunk, ctx.bwd_segments)
        batch, channels, length = x.shape
        rank, n = ctx.dt_rank, ctx.d_state
        b_col, c_col, cols = _xproj_columns(rank, n)
        # the x_proj output's gradient (2, B L, cols): [d dt_in | 0 | dB | dC | 0]
        g_dt = ddt.transpose(2, 3).reshape(2, batch * length, channels)  # views: du, ddt are channels-last
        g_xdbl = x_dbl.new_zeros(x_dbl.shape)
        g_xdbl[..., :b_col] = torch.bmm(g_dt, dt_proj_w)  # zero in the padding columns
        g_cols = g_xdbl.view(2, batch, length, cols)
        g_cols[..., b_col:b_col + n] = dB.transpose(2, 3)
        g_cols[..., c_col:c_col + n] = dC.transpose(2, 3)
        # u feeds the scan and x_proj: gu = du + g_xdbl W, in the GEMM's epilogue, into du's memory (baddbmm would
        # first copy du into a new tensor: 23 us a layer at Vim-Ti's 1024^2 batch 8 on an H200, session 19)
        gu = du.transpose(2, 3).reshape(2, batch * length, channels).baddbmm_(g_xdbl, x_proj_w)
        gu = gu.view(2, batch, length, channels).transpose(2, 3)
        if ctx.joined:  # one (B, L, 2E) gradient for xz, its halves written in place
            g_first = x.new_empty(batch, length, 2 * channels).transpose(1, 2)
            gx, gz = g_first[:, :channels], g_first[:, channels:]
        else:
            gx = x.new_empty(batch, length, channels).transpose(1, 2)
            gz = g_first = z.new_empty(batch, length, channels).transpose(1, 2)
        g_conv_w, g_conv_b = _conv_backward(x, conv_w, conv_b, gu, gx, gz, dz_terms)  # and gz = the dz terms' sum
        rows = u.transpose(2, 3).reshape(2, batch * length, channels)
        g_xproj_w = _weight_grad(g_xdbl, rows) if need[4] else None
        g_dtproj_w = _weight_grad(g_dt, x_dbl[..., :b_col]) if need[5] else None  # padded, as dt_proj_w
        g_in_proj_w = None
        if ctx.in_proj:  # in_proj's backward: the input's gradient and the weight's, from xz's (B L, 2E) rows
            del u, rows, gu, g_xdbl  # freed before in_proj's GEMMs allocate
            g_rows = g_first.transpose(1, 2).reshape(batch * length, 2 * channels)
            g_x = (g_rows @ in_proj_w).view(hidden.shape) if need[0] else None
            g_in_proj_w = g_rows.t() @ hidden.reshape(batch * length, -1) if need[17] else None
            g_z = None
        elif ctx.joined:
            g_x, g_z = g_first, None
        else:
            g_x, g_z = gx, gz
        return (g_x, g_z, g_conv_w, g_conv_b, g_xproj_w, g_dtproj_w, dA.to(A.dtype), dD.to(D.dtype),
                dbias.to(dt_bias.dtype), None, None, None, None, None, None, None, None, g_in_proj_w, None)


def bc_dtype(grad: bool = True, state: int = 16) -> str:
    """How the walks read B and C: ``VIM_FUSED_BC`` = ``auto`` (default), ``float32`` or ``input``.

    ``float32``: a copy of the 2N columns in fp32 (a small share of the traffic), so no lane converts the
    2N values it loads at every token. ``input``: the x_proj output's own 16-bit columns, read in place:
    no copy, half the bytes every lane loads a token and fewer registers for the operands loaded ahead,
    at the price of the conversions (the values are the same: fp32 holds every 16-bit value). ``auto``:
    ``input`` where the forward walk is the Gluon one, which converts each token's B and C once a program as
    it stages them, and either no gradient is needed (``grad`` False; H200, Vim-Ti inference with CUDA
    graphs: +3.9 % images/s at 224^2, batch 128, no change at 1024^2 and 1248^2, docs/RESULTS.md) or the
    walk backward is the Gluon one (``state`` states), which stages them the same way (session 19: no fp32
    copy in the forward and again in the recomputing backward); else ``float32``: the Triton walks backward
    convert at every use.
    """
    kind = os.environ.get("VIM_FUSED_BC", "auto")
    if kind not in ("auto", "float32", "input"):
        raise ValueError(f"VIM_FUSED_BC must be 'auto', 'float32' or 'input', got {kind!r}")
    if kind == "auto":
        # the backward's kinds are looked up only where a backward follows
        staged = forward_kind() == "gluon" and (
            not grad or (backward_kind() == "walk" and backward_walk_kind(state) == "gluon"))
        kind = "input" if staged else "float32"
    return kind


_gluon_ran = set()  # walk variants (see _scan_forward, _scan_backward) the Gluon kernels have run
_gluon_failure: Optional[str] = None  # why automatic selection stopped taking the Gluon forward walk
_gluon_bwd_failure: Optional[str] = None  # the same for the Gluon walk backward


def _gluon_first(run: Callable[[str], None], kind: str, variant: tuple, env_var: str, backward: bool) -> bool:
    """``run(kind)``; False where the other kernel must run instead. Gluon is experimental: under automatic
    selection (``env_var`` unset or ``auto``), where this Triton fails to build (or run) a variant of a Gluon walk
    the first time, Gluon is disabled for that walk with one warning (:func:`_disable_gluon`) and the caller runs
    the Triton one; once a variant ran, its errors are real ones and propagate."""
    if kind != "gluon" or variant in _gluon_ran or os.environ.get(env_var, "auto") != "auto":
        run(kind)
        return True
    try:
        run("gluon")
    except Exception as err:  # compile errors surface as several types across Triton versions
        _disable_gluon(err, backward)
        return False
    _gluon_ran.add(variant)
    return True


def _disable_gluon(err: BaseException, backward: bool = False) -> None:
    global _gluon_failure, _gluon_bwd_failure
    import triton
    why = f"{type(err).__name__}: {err}"[:500]
    if backward:
        _gluon_bwd_failure = why
    else:
        _gluon_failure = why
    which, var = ("walk backward", "VIM_FUSED_BACKWARD_WALK") if backward else ("forward walk", "VIM_FUSED_FORWARD")
    warnings.warn(f"the Gluon {which} of the fused scan failed with Triton {triton.__version__} ({why}); the "
                  f"fused op uses the Triton one from now on ({var}=triton chooses it from the start)", stacklevel=5)


def forward_kind(block_e: int = DEFAULT_BLOCK_E, num_warps: int = DEFAULT_NUM_WARPS) -> str:
    """Which forward walk the fused op runs: ``gluon`` (the walk of ``fused_bimamba_gluon``, a channel a
    lane by construction) or ``triton`` (``_scan_fwd_kernel``). ``VIM_FUSED_FORWARD`` = ``auto`` (default),
    ``gluon`` or ``triton``; ``auto`` takes ``gluon`` when it imports, the kernels are compiled (not under
    ``TRITON_INTERPRET``), torch is a CUDA (not ROCm) build, a warp's 32 lanes hold 1, 2 or 4 lanes a
    channel (``32 num_warps / block_e``: Gluon's SPLIT), and no Gluon walk has failed in this process (then
    ``auto`` falls back to the Triton walk with a warning; see ``_scan_forward``)."""
    kind = os.environ.get("VIM_FUSED_FORWARD", "auto")
    if kind not in ("auto", "gluon", "triton"):
        raise ValueError(f"VIM_FUSED_FORWARD must be 'auto', 'gluon' or 'triton', got {kind!r}")
    # the Gluon layouts are written for 32-lane warps: CUDA builds only (ROCm's wavefronts have 64)
    usable = (32 * num_warps) % block_e == 0 and 32 * num_warps // block_e in (1, 2, 4) and not _interpreting() \
        and torch.version.hip is None and _gluon_importable()
    if kind == "auto" and _gluon_failure is not None:
        usable = False
    if kind == "gluon" and not usable:
        raise ValueError("VIM_FUSED_FORWARD=gluon needs triton.experimental.gluon, compiled kernels (no "
                         f"TRITON_INTERPRET) and 32 * num_warps / block_e in (1, 2, 4) (got {block_e}, {num_warps})")
    if kind == "auto":
        kind = "gluon" if usable else "triton"
    return kind


def backward_kind() -> str:
    """Which backward kernel the fused op runs: ``VIM_FUSED_BACKWARD`` = ``walk`` (default) or ``chunk``.

    ``walk``: the forward's token walk run backwards, chunk by chunk from the saved states; on an H200 at
    L = 4097, B = 16, E = 384, bf16, forward + backward took 8.7 ms against 26.4 ms with ``chunk``
    (docs/RESULTS.md). ``chunk``: associative scans over (BWD_BLOCK_E, CHUNK, N) tiles.
    """
    kind = os.environ.get("VIM_FUSED_BACKWARD", "walk")
    if kind not in ("chunk", "walk"):
        raise ValueError(f"VIM_FUSED_BACKWARD must be 'chunk' or 'walk', got {kind!r}")
    return kind


def backward_walk_kind(state: int = 16, chunk: int = DEFAULT_CHUNK) -> str:
    """Which walk backward the ``walk`` backward runs: ``gluon`` (``fused_bimamba_gluon._scan_bwd_walk_gluon_kernel``
    and its summaries, a channel and its N states a lane (GLUON_BWD_SPLIT lanes in the walk), GLUON_BWD_NUM_WARPS
    warps a program) or ``triton`` (``_scan_bwd_walk_kernel``, BWD_WALK_BLOCK_E channels a program).
    ``VIM_FUSED_BACKWARD_WALK`` = ``auto`` (default), ``gluon`` or ``triton``; ``auto`` takes ``gluon`` where the
    Gluon forward walk could run (see :func:`forward_kind`), N divides 32 and is a multiple of GLUON_BWD_SPLIT, the
    chunk is a multiple of GLUON_BWD_GROUP, and no Gluon walk backward
    has failed in this process (then ``auto`` falls back to the Triton one with a warning, as the forward).

    H200, Vim-Ti training steps from CUDA graphs, bf16, two processes each (docs/RESULTS.md, session 16): the
    Gluon walk backward took 23.1 ms of a 1024^2 batch-8 step's kernels against 39.3 ms, and the step ran
    1.33x / 1.40x / 1.30x the images/s at 1024^2 (8) / 224^2 (128) / 1248^2 (4). Its first form, which kept
    every token's state in the scratch as the Triton walk does, took 39.2 ms; with GROUP 2 the step ran 1.21x /
    1.28x / 1.26x."""
    kind = os.environ.get("VIM_FUSED_BACKWARD_WALK", "auto")
    if kind not in ("auto", "gluon", "triton"):
        raise ValueError(f"VIM_FUSED_BACKWARD_WALK must be 'auto', 'gluon' or 'triton', got {kind!r}")
    usable = 32 % state == 0 and state % GLUON_BWD_SPLIT == 0 and chunk % GLUON_BWD_GROUP == 0 \
        and not _interpreting() and torch.version.hip is None and _gluon_importable()
    if kind == "gluon" and not usable:
        raise ValueError("VIM_FUSED_BACKWARD_WALK=gluon needs triton.experimental.gluon, compiled kernels (no "
                         f"TRITON_INTERPRET), a state size that divides 32 and is a multiple of GLUON_BWD_SPLIT, and a "
                         f"chunk of GLUON_BWD_GROUP k tokens (got {state}, {chunk})")
    if kind == "auto":
        kind = "gluon" if usable and _gluon_bwd_failure is None else "triton"
    return kind


# ------------------------------------------------------------------------------------------ public API


def _pair(f: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.stack([f, b]).to(dtype)


def _xproj_columns(dt_rank: int, d_state: int, align: int = 8):
    """(first column of B, first column of C, columns) of the padded x_proj output; ``align`` elements."""
    n_cols = _cdiv(d_state, align) * align
    b_col = _cdiv(dt_rank, align) * align
    return b_col, b_col + n_cols, b_col + 2 * n_cols


def _xproj_weight(w_f: torch.Tensor, w_b: torch.Tensor, dt_rank: int, d_state: int, dtype: torch.dtype) -> torch.Tensor:
    """Both directions' x_proj weights (R + 2N, E) as one (2, cols, E), rows placed per :func:`_xproj_columns`."""
    b_col, c_col, cols = _xproj_columns(dt_rank, d_state)
    w = _pair(w_f, w_b, dtype)
    zeros = w.new_zeros(2, 1, w.shape[-1])
    parts = [w[:, :dt_rank], zeros.expand(-1, b_col - dt_rank, -1), w[:, dt_rank:dt_rank + d_state],
             zeros.expand(-1, c_col - b_col - d_state, -1), w[:, dt_rank + d_state:],
             zeros.expand(-1, cols - c_col - d_state, -1)]
    return torch.cat(parts, dim=1)


def _dtproj_weight(w_f: torch.Tensor, w_b: torch.Tensor, dt_rank: int, d_state: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """Both directions' dt_proj weights (E, R) as one (2, E, K), zero columns from R up to K, the first B column
    of the x_proj output (:func:`_xproj_columns`): dt_proj then reads the x_proj output's dt columns with their
    (zero) padding, a reduction of 16-byte rows. With R = 12 (Vim-Ti; Vim-S and -B have 24 and 48, no padding)
    cuBLAS took a 4-byte-aligned sm_80 kernel for the (B L, 12) x (12, E) product: on an H200 at 1024^2,
    batch 64, 240 us a layer, 10 % of the forward; the zeros add exactly nothing."""
    b_col, _, _ = _xproj_columns(dt_rank, d_state)
    w = _pair(w_f, w_b, dtype)
    return torch.cat([w, w.new_zeros(2, w.shape[1], b_col - dt_rank)], dim=2) if b_col > dt_rank else w


def _check_activations(x: torch.Tensor, z: Optional[torch.Tensor]) -> None:
    if z is None:  # x is xz (B, 2E, L)
        if x.dim() != 3 or x.shape[1] % 2:
            raise ValueError(f"with z None, x must be the in_proj output (batch, 2 d_inner, L); got {tuple(x.shape)}")
        z = x
    if x.dim() != 3 or z.shape != x.shape:
        raise ValueError(f"x and z must both be (batch, d_inner, L); got x {tuple(x.shape)}, z {tuple(z.shape)}")
    if x.dtype not in FUSED_DTYPES or z.dtype != x.dtype:
        raise TypeError(f"fused scan supports x/z of one dtype in {FUSED_DTYPES}; got {x.dtype}, {z.dtype} "
                        f"(use bidirectional_scan_ref for other dtypes)")


def _check_weights(x_proj_w_f: torch.Tensor, dt_rank: int, d_state: int) -> None:
    if d_state < 1 or d_state & (d_state - 1):
        raise ValueError(f"fused scan needs d_state a power of two (Triton tile); got {d_state}")
    if x_proj_w_f.shape[0] != dt_rank + 2 * d_state:
        raise ValueError(f"x_proj weight has {x_proj_w_f.shape[0]} rows, expected dt_rank + 2 * d_state = "
                         f"{dt_rank + 2 * d_state}")


def bidirectional_scan_fused(
    x: torch.Tensor,
    z: Optional[torch.Tensor],
    conv_w_f: torch.Tensor,
    conv_b_f: Optional[torch.Tensor],
    conv_w_b: torch.Tensor,
    conv_b_b: Optional[torch.Tensor],
    x_proj_w_f: torch.Tensor,
    x_proj_w_b: torch.Tensor,
    dt_proj_w_f: torch.Tensor,
    dt_proj_b_f: torch.Tensor,
    dt_proj_w_b: torch.Tensor,
    dt_proj_b_b: torch.Tensor,
    A_f: torch.Tensor,
    A_b: torch.Tensor,
    D_f: torch.Tensor,
    D_b: torch.Tensor,
    dt_rank: int,
    d_state: int,
    block_e: Optional[int] = None,
    chunk: Optional[int] = None,
    num_warps: Optional[int] = None,
    segments: Optional[int] = None,
    bwd_segments: Optional[int] = None,
    recompute: bool = False,
) -> torch.Tensor:
    """Both Vim scan directions, gated and averaged: ``(y_f + y_b) * silu(z) / 2``, (B, E, L).

    Args:
        x (Tensor): conv input (B, E, L) after ``in_proj`` (any strides); or, with ``z`` None, the whole
            in_proj output xz (B, 2E, L), whose halves are x and z. The mixer passes xz: its gradient
            is then one tensor (written in place, no concatenation).
        z (Tensor, optional): gate (B, E, L).
        conv_w_f, conv_w_b (Tensor): depthwise conv taps (E, W) or (E, 1, W).
        conv_b_f, conv_b_b (Tensor, optional): conv biases (E,).
        x_proj_w_f, x_proj_w_b (Tensor): (R + 2N, E).
        dt_proj_w_f, dt_proj_w_b (Tensor): (E, R); dt_proj_b_f, dt_proj_b_b: (E,).
        A_f, A_b (Tensor): ``-exp(A_log)``, (E, N).
        D_f, D_b (Tensor): skip weights (E,).
        dt_rank (int): R. d_state (int): N, a power of two.
        block_e (int, optional): channels per forward program, a power of two. Defaults to ``DEFAULT_BLOCK_E``.
        chunk (int, optional): tokens between saved states (training), a power of two; also the backward's
            tile length. Defaults to ``DEFAULT_CHUNK``.
        num_warps (int, optional): warps per forward program. Defaults to ``DEFAULT_NUM_WARPS``.
        segments (int, optional): pieces each direction's walk is cut into (parallel programs, plus a
            pass for the segment states); 1 for none. Defaults to :func:`default_segments`.
        bwd_segments (int, optional): the same for the walk backward (pieces of whole chunks, plus a pass
            for the gradient each piece sends back). Defaults to :func:`default_segments`.
        recompute (bool): keep less for the backward, which then recomputes the conv output, the step dt and
            the fp32 copy of B and C from x and the x_proj output (a conv kernel, a GEMM and a cast): 3.3 of the 8.6
            kB a token that a Vim-Ti block keeps. Defaults to False (keep them).
    """
    _check_activations(x, z)  # prepare_fused_weights checks the weights
    weights = prepare_fused_weights(conv_w_f, conv_b_f, conv_w_b, conv_b_b, x_proj_w_f, x_proj_w_b, dt_proj_w_f,
                                    dt_proj_b_f, dt_proj_w_b, dt_proj_b_b, A_f, A_b, D_f, D_b, dt_rank, d_state,
                                    x.dtype)
    with on_device_of(x):
        return _scan_prepared(x, z, weights, dt_rank, d_state, block_e, chunk, num_warps, segments, bwd_segments,
                              recompute)


class FusedWeights(NamedTuple):
    """A mixer's parameters as the fused op consumes them (:func:`prepare_fused_weights`)."""
    conv_w: torch.Tensor  # (2, E, W) fp32
    conv_b: torch.Tensor  # (2, E) fp32
    x_proj_w: torch.Tensor  # (2, cols, E) in the activation dtype, rows placed per _xproj_columns
    dt_proj_w: torch.Tensor  # (2, E, K) in the activation dtype, zero columns from R to K (_dtproj_weight)
    A: torch.Tensor  # (2, E, N) fp32
    D: torch.Tensor  # (2, E) fp32
    dt_bias: torch.Tensor  # (2, E) fp32


def prepare_fused_weights(conv_w_f, conv_b_f, conv_w_b, conv_b_b, x_proj_w_f, x_proj_w_b, dt_proj_w_f,
                          dt_proj_b_f, dt_proj_w_b, dt_proj_b_b, A_f, A_b, D_f, D_b, dt_rank: int, d_state: int,
                          dtype: torch.dtype, a_log: bool = False) -> FusedWeights:
    """Both directions' parameters stacked, cast and padded for :func:`scan_fused_prepared` (about 16
    small kernels a mixer; arguments as in :func:`bidirectional_scan_fused`, ``dtype`` that of x).
    ``a_log``: ``A_f`` and ``A_b`` are the parameters ``A_log`` / ``A_b_log``, and A = -exp(A_log) (in fp32) is
    made here, inside the node, instead of by four autograd nodes of the caller's (exp and neg, two directions).
    Differentiable, as one autograd node (:class:`_PrepareWeights`). ``BiMambaMixer`` keeps the result
    while gradients are off and its parameters do not change, which takes these launches out of inference."""
    _check_weights(x_proj_w_f, dt_rank, d_state)
    params = (conv_w_f, conv_b_f, conv_w_b, conv_b_b, x_proj_w_f, x_proj_w_b, dt_proj_w_f, dt_proj_b_f, dt_proj_w_b,
              dt_proj_b_b, A_f, A_b, D_f, D_b)
    if torch.is_grad_enabled() and any(p is not None and p.requires_grad for p in params):
        return FusedWeights(*_PrepareWeights.apply(dt_rank, d_state, dtype, a_log, *params))
    return _prepare(*params, dt_rank, d_state, dtype, a_log)


def _prepare(conv_w_f, conv_b_f, conv_w_b, conv_b_b, x_proj_w_f, x_proj_w_b, dt_proj_w_f, dt_proj_b_f, dt_proj_w_b,
             dt_proj_b_b, A_f, A_b, D_f, D_b, dt_rank: int, d_state: int, dtype: torch.dtype,
             a_log: bool = False) -> FusedWeights:
    channels = x_proj_w_f.shape[-1]
    A = _pair(A_f, A_b, torch.float32)
    A = -torch.exp(A) if a_log else A.contiguous()
    width = conv_w_f.shape[-1]
    conv_w = _pair(conv_w_f.reshape(channels, width), conv_w_b.reshape(channels, width), torch.float32)
    zeros = x_proj_w_f.new_zeros(channels, dtype=torch.float32)
    conv_b = _pair(zeros if conv_b_f is None else conv_b_f, zeros if conv_b_b is None else conv_b_b, torch.float32)
    return FusedWeights(conv_w.contiguous(), conv_b.contiguous(),
                        _xproj_weight(x_proj_w_f, x_proj_w_b, dt_rank, d_state, dtype),
                        _dtproj_weight(dt_proj_w_f, dt_proj_w_b, dt_rank, d_state, dtype),
                        A,
                        _pair(D_f, D_b, torch.float32).contiguous(),
                        _pair(dt_proj_b_f, dt_proj_b_b, torch.float32).contiguous())


class _PrepareWeights(torch.autograd.Function):
    """:func:`prepare_fused_weights` as one autograd node.

    Composed from PyTorch ops, the preparation put about 16 nodes a mixer into the autograd graph (stacks,
    casts, the padded concatenation) and as many again into the backward; on an H200 the host took 113 ms
    to enqueue a bf16 training step of Vim-Ti at 1024^2 (batch 8) that ran 120 ms on the GPU, a third of
    it in the autograd engine. Here the forward launches the same small kernels without recording them,
    and the backward hands each parameter its slice of the stacked gradients: views, one concatenation
    for x_proj, and a cast where the dtypes differ.
    """

    @staticmethod
    def forward(ctx, dt_rank: int, d_state: int, dtype: torch.dtype, a_log: bool, *params):
        ctx.dt_rank, ctx.d_state, ctx.a_log = dt_rank, d_state, a_log
        ctx.meta = [None if p is None else (p.shape, p.dtype) for p in params]
        prepared = _prepare(*params, dt_rank, d_state, dtype, a_log)
        if a_log:
            ctx.save_for_backward(prepared.A)  # d(-exp(a)) / da = -exp(a) = A
        return tuple(prepared)

    @staticmethod
    def backward(ctx, g_conv_w, g_conv_b, g_x_proj, g_dt_proj, g_A, g_D, g_bias):
        meta = ctx.meta
        wanted = ctx.needs_input_grad[4:]
        if ctx.a_log and g_A is not None:
            (A,) = ctx.saved_tensors
            g_A = g_A * A

        def split(grad, i_f, i_b):  # the stacked (2, ...) gradient -> parameters i_f (direction 0), i_b
            if grad is None:
                return None, None
            dtypes = {meta[i][1] for i in (i_f, i_b) if meta[i] is not None and wanted[i]}
            if len(dtypes) == 1:
                grad = grad.to(dtypes.pop())  # one cast for both directions
            return tuple(None if meta[i] is None or not wanted[i] else grad[d].reshape(meta[i][0]).to(meta[i][1])
                         for d, i in ((0, i_f), (1, i_b)))

        if g_x_proj is not None:  # drop the padding columns: rows [dt | B | C] of each direction
            b_col, c_col, _ = _xproj_columns(ctx.dt_rank, ctx.d_state)
            n = ctx.d_state
            g_x_proj = torch.cat([g_x_proj[:, :ctx.dt_rank], g_x_proj[:, b_col:b_col + n],
                                  g_x_proj[:, c_col:c_col + n]], dim=1)
        if g_dt_proj is not None:  # and those of dt_proj
            g_dt_proj = g_dt_proj[..., :ctx.dt_rank]
        grads = [None] * 14
        grads[0], grads[2] = split(g_conv_w, 0, 2)
        grads[1], grads[3] = split(g_conv_b, 1, 3)
        grads[4], grads[5] = split(g_x_proj, 4, 5)
        grads[6], grads[8] = split(g_dt_proj, 6, 8)
        grads[7], grads[9] = split(g_bias, 7, 9)
        grads[10], grads[11] = split(g_A, 10, 11)
        grads[12], grads[13] = split(g_D, 12, 13)
        return (None, None, None, None, *grads)


def scan_fused_prepared(x: torch.Tensor, z: Optional[torch.Tensor], weights: FusedWeights, dt_rank: int, d_state: int,
                        block_e: Optional[int] = None, chunk: Optional[int] = None, num_warps: Optional[int] = None,
                        segments: Optional[int] = None, bwd_segments: Optional[int] = None,
                        recompute: bool = False, in_proj_w: Optional[torch.Tensor] = None, x_from=None) -> torch.Tensor:
    """:func:`bidirectional_scan_fused` on weights from :func:`prepare_fused_weights` (same options).

    ``in_proj_w`` (2E, D), with ``recompute=True`` and ``z`` None: ``x`` is the mixer's input (B, L, D), in the
    weights' dtype like ``in_proj_w``, and the op applies in_proj to it first, in the same autograd node, which then
    keeps x for the backward instead of the in_proj output (2E / D = 4 times its size for Vim) and recomputes that.
    ``x_from`` ``(fn, t)``, with ``in_proj_w``: ``fn(t)`` makes x again, to the bit, without autograd; the node then
    keeps ``t`` instead of x. For a ``t`` that is kept anyway: the mixer's input is the norm of the fp32 residual
    stream, which the norm keeps for its own backward (:meth:`~vim_backbone.layers.norm.RMSNorm.norm_again`).
    """
    if in_proj_w is not None:
        if z is not None or not recompute:
            raise ValueError("in_proj_w goes with z None (x the mixer's input) and recompute=True")
        channels = weights.x_proj_w.shape[-1]
        if x.dim() != 3 or in_proj_w.shape != (2 * channels, x.shape[-1]):
            raise ValueError(f"with in_proj_w, x must be (batch, L, d_model) and in_proj_w (2 d_inner, d_model); got "
                             f"x {tuple(x.shape)}, in_proj_w {tuple(in_proj_w.shape)}, d_inner {channels}")
        if x.dtype not in FUSED_DTYPES or in_proj_w.dtype != x.dtype:
            raise TypeError(f"x and in_proj_w must share one dtype in {FUSED_DTYPES}; got {x.dtype}, {in_proj_w.dtype}")
    else:
        if x_from is not None:
            raise ValueError("x_from goes with in_proj_w")
        _check_activations(x, z)
    if weights.x_proj_w.dtype != x.dtype:
        raise TypeError(f"weights prepared for {weights.x_proj_w.dtype}, activations are {x.dtype}")
    with on_device_of(x):
        return _scan_prepared(x, z, weights, dt_rank, d_state, block_e, chunk, num_warps, segments, bwd_segments,
                              recompute, in_proj_w, x_from)


def fused_mixer_inference(hidden: torch.Tensor, in_proj_w: torch.Tensor, out_proj_w: torch.Tensor,
                          weights: FusedWeights, dt_rank: int, d_state: int, block_e: Optional[int] = None,
                          chunk: Optional[int] = None, num_warps: Optional[int] = None,
                          segments: Optional[int] = None) -> torch.Tensor:
    """The mixer's whole forward for inference, (B, L, D) -> (B, L, D): ``out_proj`` of
    :func:`scan_fused_prepared` on ``in_proj(hidden)``, the same values, without autograd.

    It keeps fewer activations alive at once. in_proj's x half is a GEMM of its own, and x goes once the
    conv has read it. The walks write their outputs over dt, and u goes before the tail. The tail, in_proj's
    z half, the gate and out_proj, is one kernel (:func:`_gate_out_proj`) that writes neither z nor the gate
    (16-bit weights; fp32 takes the unfused GEMMs and gate kernel, TAIL_FUSED_FP32).
    So (16-bit) at most one (B, L, E) pair is alive (u and dt during the walks, y after), where the op under autograd
    holds xz, u, dt and y at once.
    ``in_proj_w`` (2E, D) and ``out_proj_w`` (D, E), the module's parameters: the GEMMs run in the dtype of the
    prepared ``weights`` (autocast's, when it is on), on copies of the two weights made for the call and dropped
    with it. Kept in the module between calls instead, Vim-Ti's copies held 10.6 MB (bf16) for good, to save two
    small kernels a block: 1.5% images/s at 224^2 (batch 128), 0.6% at 1024^2 (16), none at batch 64 (H200, bf16,
    CUDA graphs; docs/RESULTS.md, session 10). Options as in :func:`bidirectional_scan_fused`.
    """
    with on_device_of(hidden):
        return _mixer_inference(hidden, in_proj_w, out_proj_w, weights, dt_rank, d_state, block_e, chunk, num_warps,
                                segments)


def _mixer_inference(hidden, in_proj_w, out_proj_w, weights: FusedWeights, dt_rank: int, d_state: int,
                     block_e: Optional[int], chunk: Optional[int], num_warps: Optional[int],
                     segments: Optional[int]) -> torch.Tensor:
    channels = in_proj_w.shape[0] // 2
    dtype = weights.x_proj_w.dtype
    in_w = in_proj_w.to(dtype)
    x = F.linear(hidden.to(dtype), in_w[:channels]).transpose(1, 2)  # (B, E, L) view of (B, L, E) rows
    _check_activations(x, x)
    u = _conv_forward(x, weights.conv_w, weights.conv_b)
    del x
    _, dt, Bm, Cm = _projections(u, weights.x_proj_w, weights.dt_proj_w, dt_rank, d_state, grad=False)
    y, _ = _walks(u, dt, Bm, Cm, weights.A, weights.D, weights.dt_bias, u.dtype, block_e or DEFAULT_BLOCK_E,
                  chunk or DEFAULT_CHUNK, num_warps or DEFAULT_NUM_WARPS, segments, store_states=False,
                  y_into_dt=True)
    del u, dt, Bm, Cm
    return _gate_out_proj(y, hidden.to(dtype), in_w[channels:], out_proj_w.to(dtype))


def next_power_of_2(n: int) -> int:
    """The least power of two >= ``n`` (1 for n <= 1): Triton's tile widths."""
    return 1 << (max(n, 1) - 1).bit_length()


def _out_parts(d: int) -> Tuple[int, int]:
    """D split into two power-of-two tile widths (each at least 16, tl.dot's least) whose sum covers it:
    192 -> 128 + 64, 384 -> 256 + 128, 256 -> 128 + 128, 100 -> 64 + 64 (the kernel masks past D)."""
    d0 = 1 << (max(d, 1).bit_length() - 1)
    if d0 == d and d >= 32:
        d0 //= 2
    d0 = max(16, d0)
    return d0, max(16, next_power_of_2(d - d0))


def _gate_out_proj(y: torch.Tensor, hidden: torch.Tensor, z_w: torch.Tensor, out_w: torch.Tensor,
                   fused: Optional[bool] = None) -> torch.Tensor:
    """The mixer's tail without autograd: ``out_proj((y[0] + y[1]) * silu(in_proj_z(hidden)) / 2)`` in one
    kernel, (B, L, D) in the weights' dtype.

    ``y`` (2, B, E, L) the walks' channels-last outputs, ``hidden`` (B, L, D) the mixer's input in the weights'
    dtype, ``z_w`` (E, D) in_proj's z rows, ``out_w`` (D, E). Unfused, this is a z GEMM, ``_gate_sum`` and the
    out_proj GEMM, which write and read back two (B, L, E) tensors; here z and the gate stay in registers (the
    values are rounded as those tensors would be). ``fused``: the one kernel (True) or the unfused three
    (False); by default the kernel for 16-bit weights only (TAIL_FUSED_FP32).
    """
    _, batch, channels, length = y.shape
    if fused is None:
        fused = out_w.dtype != torch.float32 or TAIL_FUSED_FP32
    if not fused:
        z = F.linear(hidden, z_w).transpose(1, 2)  # (B, E, L) view of (B, L, E) rows
        return F.linear(_gate_sum(y, z).transpose(1, 2), out_w)
    k = load_fused_kernels()
    rows = batch * length
    y_rows = y.transpose(2, 3).reshape(2, rows, channels)  # a view for the walks' layout
    h = hidden.reshape(rows, -1)
    if y_rows.stride(2) != 1:
        y_rows = y_rows.contiguous()
    if h.stride(1) != 1:
        h = h.contiguous()
    d = h.shape[1]
    z_w, out_w = z_w.contiguous(), out_w.contiguous()
    out = torch.empty(rows, d, device=h.device, dtype=out_w.dtype)
    d0, d1 = _out_parts(d)
    configs = _tail_configs(d0 + d1, out.element_size(), _shared_memory_limit(h.device))
    key = (tuple(configs), d0 + d1, out.element_size(), h.device)
    for i in range(_tail_start.get(key, 0), len(configs)):
        block_m, block_k, stages = configs[i]
        try:
            k._gate_out_proj_kernel[(_cdiv(rows, block_m),)](
                y_rows, h, z_w, out_w, out, rows, channels, d, y_rows.stride(0), y_rows.stride(1), h.stride(0),
                out.stride(0), BLOCK_M=block_m, BLOCK_K=block_k, D0=d0, D1=d1, IEEE=out.dtype == torch.float32,
                F32_DOTS=_interpreting(), FAST=not _interpreting(), num_warps=OUT_NUM_WARPS, num_stages=stages)
        except Exception as err:  # a Triton whose shared memory use the estimate misjudges: the next config
            if type(err).__name__ != "OutOfResources" or i == len(configs) - 1:
                raise
        else:
            _tail_start[key] = i
            break
    return out.view(batch, length, d)


_tail_start = {}  # (configs, D0 + D1, itemsize, device) -> index of the config that ran


def tail_shared_memory(block_m: int, block_k: int, stages: int, d: int, itemsize: int) -> int:
    """Bytes of shared memory Triton gives ``_gate_out_proj_kernel`` (sm_90, Triton 3.6; ``d`` = D0 + D1): the
    (BLOCK_M, D) input tile and two (D, BLOCK_K) weight tiles, plus each stage past the first holding both
    weight tiles and both y tiles. It matches the five sizes Triton reported for D = 192 in bf16 exactly
    (docs/RESULTS.md, session 11)."""
    return itemsize * (block_m * d + 2 * d * block_k + (stages - 1) * 2 * block_k * (d + block_m))


def _tail_configs(d: int, itemsize: int, limit: Optional[int]) -> list:
    """(BLOCK_M, BLOCK_K, stages) configs of the tail to try in turn: the defaults, then ever smaller ones
    (fewer stages first, then narrower steps, then fewer rows), from the first that fits ``limit`` bytes of
    shared memory by :func:`tail_shared_memory` (all of them when ``limit`` is None; the last if none fits)."""
    sizes = [(OUT_BLOCK_M, OUT_BLOCK_K, OUT_NUM_STAGES), (OUT_BLOCK_M, OUT_BLOCK_K, 2), (OUT_BLOCK_M, 16, 2),
             (OUT_BLOCK_M, 16, 1), (32, 16, 1), (16, 16, 1)]
    sizes = list(dict.fromkeys(sizes))  # defaults already small: no repeats
    if limit is None:
        return sizes
    first = next((i for i, c in enumerate(sizes) if tail_shared_memory(*c, d, itemsize) <= limit), len(sizes) - 1)
    return sizes[first:]


@lru_cache(maxsize=None)
def _shared_memory_limit(device: torch.device) -> Optional[int]:
    """Shared memory one program may use on ``device``, less 4 KB of margin; None on CPU."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return getattr(props, "shared_memory_per_block_optin", 48 * 1024) - 4096


def _scan_prepared(x, z, weights: FusedWeights, dt_rank: int, d_state: int, block_e, chunk, num_warps, segments,
                   bwd_segments, recompute: bool = False, in_proj_w: Optional[torch.Tensor] = None,
                   x_from=None) -> torch.Tensor:
    return _FusedMixer.apply(x, z, *weights, dt_rank, d_state, block_e or DEFAULT_BLOCK_E, chunk or DEFAULT_CHUNK,
                             num_warps or DEFAULT_NUM_WARPS, segments, bwd_segments, recompute, in_proj_w, x_from)


def bidirectional_selective_scan(u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor,
                                 Cm: torch.Tensor, D: torch.Tensor, z: torch.Tensor, dt_bias: torch.Tensor,
                                 block_e: Optional[int] = None, chunk: Optional[int] = None,
                                 num_warps: Optional[int] = None, segments: Optional[int] = None,
                                 bwd_segments: Optional[int] = None) -> torch.Tensor:
    """The scan stage of the fused op alone: ``(y_0 + y_1) * silu(z) / 2``, (B, E, L).

    Direction 0 scans t = 0 .. L - 1, direction 1 t = L - 1 .. 0, both over the original order.

    Args:
        u, dt (Tensor): (2, B, E, L) scan input and raw step (before ``dt_bias`` and softplus); any
            strides, fastest with E contiguous.
        A (Tensor): (2, E, N) fp32. Bm, Cm (Tensor): (2, B, N, L). D, dt_bias (Tensor): (2, E) fp32.
        z (Tensor): (B, E, L) gate, the output's dtype.
    """
    return _BidirectionalScan.apply(u, dt, Bm, Cm, z, A.float().contiguous(), D.float().contiguous(),
                                    dt_bias.float().contiguous(), block_e or DEFAULT_BLOCK_E,
                                    chunk or DEFAULT_CHUNK, num_warps or DEFAULT_NUM_WARPS, segments, bwd_segments)


def _direction_ref(x, z, conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b, A, D, dt_rank, d_state):
    # mirrors BiMambaMixer._direction with the reference backend
    channels = x.shape[1]
    u = causal_conv1d_ref(x, conv_w.reshape(channels, -1), conv_b, "silu")
    x_dbl = F.linear(u.transpose(1, 2), x_proj_w)  # (B, L, R + 2N)
    dt, Bm, Cm = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    dt = F.linear(dt, dt_proj_w).transpose(1, 2)
    return selective_scan_ref(u, dt, A.float(), Bm.transpose(1, 2).contiguous(), Cm.transpose(1, 2).contiguous(),
                              D.float(), z=z, delta_bias=dt_proj_b.float(), delta_softplus=True)


def bidirectional_scan_ref(
    x: torch.Tensor,
    z: Optional[torch.Tensor],
    conv_w_f: torch.Tensor,
    conv_b_f: Optional[torch.Tensor],
    conv_w_b: torch.Tensor,
    conv_b_b: Optional[torch.Tensor],
    x_proj_w_f: torch.Tensor,
    x_proj_w_b: torch.Tensor,
    dt_proj_w_f: torch.Tensor,
    dt_proj_b_f: torch.Tensor,
    dt_proj_w_b: torch.Tensor,
    dt_proj_b_b: torch.Tensor,
    A_f: torch.Tensor,
    A_b: torch.Tensor,
    D_f: torch.Tensor,
    D_b: torch.Tensor,
    dt_rank: int,
    d_state: int,
    block_e: Optional[int] = None,
    chunk: Optional[int] = None,
    num_warps: Optional[int] = None,
    segments: Optional[int] = None,
    bwd_segments: Optional[int] = None,
    recompute: bool = False,
) -> torch.Tensor:
    """Pure-PyTorch twin of :func:`bidirectional_scan_fused` (flip copies, two reference scans).

    ``block_e``, ``chunk``, ``num_warps``, ``segments``, ``bwd_segments`` and ``recompute`` are accepted for
    signature parity and ignored.
    """
    if z is None:  # x is xz (B, 2E, L)
        x, z = x.chunk(2, dim=1)
    o_f = _direction_ref(x, z, conv_w_f, conv_b_f, x_proj_w_f, dt_proj_w_f, dt_proj_b_f, A_f, D_f, dt_rank, d_state)
    o_b = _direction_ref(x.flip(-1), z.flip(-1), conv_w_b, conv_b_b, x_proj_w_b, dt_proj_w_b, dt_proj_b_b, A_b, D_b,
                         dt_rank, d_state)
    return (o_f + o_b.flip(-1)) / 2
