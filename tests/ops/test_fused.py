"""Parity of the fused Triton bidirectional scan with the reference composition of ``BiMambaMixer``.

Runs on CUDA, or on CPU under the Triton interpreter (``TRITON_INTERPRET=1``, tiny shapes); skipped when
neither is available. Each case compares the forward and every input gradient (one shared upstream
gradient) against the pure-PyTorch reference run in fp32 on the same values.
"""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

from vim_backbone.layers.mixer import BiMambaMixer
from vim_backbone.ops import get_backend
from vim_backbone.ops.fused_bimamba import (_xproj_columns, bidirectional_scan_fused, bidirectional_scan_ref,
                                            fused_available)

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
DEVICE = torch.device("cuda" if torch.cuda.is_available() and not INTERPRET else "cpu")
pytestmark = pytest.mark.skipif(not fused_available(DEVICE),
                                reason="fused scan needs Triton with CUDA, or TRITON_INTERPRET=1")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available() or INTERPRET, reason="GPU-sized case needs CUDA")

# max |err| / max(1, max |ref|) against the fp32 reference, (forward, gradients)
TOL = {torch.float32: (1e-4, 1e-4), torch.float16: (5e-3, 1e-2), torch.bfloat16: (3e-2, 5e-2)}
NAMES = ("x", "z", "conv_w_f", "conv_b_f", "conv_w_b", "conv_b_b", "x_proj_w_f", "x_proj_w_b", "dt_proj_w_f",
         "dt_proj_b_f", "dt_proj_w_b", "dt_proj_b_b", "A_f", "A_b", "D_f", "D_b")


@pytest.fixture(scope="module", autouse=True)
def _fast_interpreter_scan():
    """Run the interpreter's generic ``associative_scan`` one slice at a time instead of one element.

    NOTE: Triton's interpreter calls a user combine function once per element in Python (~0.5 ms each),
    which would make this file take minutes on two cores. The combine is elementwise, so applying it to
    whole slices along the scan axis, left to right, is the same computation.
    """
    if not INTERPRET:
        yield
        return
    import numpy as np
    from triton.runtime import interpreter

    scan_ops = getattr(interpreter, "ScanOps", None)
    if scan_ops is None or not hasattr(scan_ops, "generic_scan"):
        yield  # another Triton layout: stay correct, just slower
        return

    def generic_scan(self, inputs):
        axis = self.axis
        data = [t.handle.data for t in inputs]
        outs = [np.empty_like(a) for a in data]
        acc = None
        for i in range(data[0].shape[axis]):
            cur = tuple(self.to_tensor(np.take(a, i, axis=axis), t.dtype) for a, t in zip(data, inputs))
            if acc is None:
                acc = cur
            else:
                ret = self.combine_fn.fn(*acc, *cur)
                acc = ret if isinstance(ret, tuple) else (ret,)
            index = (slice(None),) * axis + (i,)
            for out, a in zip(outs, acc):
                out[index] = a.handle.data
        return [self.to_tensor(out, t.dtype) for out, t in zip(outs, inputs)]

    original = scan_ops.generic_scan
    scan_ops.generic_scan = generic_scan
    yield
    scan_ops.generic_scan = original


def _make_args(dtype, b, e, l, n, r, device=DEVICE, seed=0):
    g = torch.Generator().manual_seed(seed)

    def mk(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g) * scale + shift).to(device=device, dtype=dtype).requires_grad_()

    xz = torch.randn(b, 2 * e, l, generator=g).to(device=device, dtype=dtype)
    x, z = (t.detach().requires_grad_() for t in xz.chunk(2, dim=1))  # strided views, as in the mixer
    args = dict(x=x, z=z)
    for s in ("f", "b"):
        args[f"conv_w_{s}"] = mk(e, 4, scale=0.5)
        args[f"conv_b_{s}"] = mk(e, scale=0.3)
    for s in ("f", "b"):
        args[f"x_proj_w_{s}"] = mk(r + 2 * n, e, scale=e ** -0.5)
    for s in ("f", "b"):
        args[f"dt_proj_w_{s}"] = mk(e, r, scale=r ** -0.5)
        args[f"dt_proj_b_{s}"] = mk(e, scale=0.5, shift=-2.0)  # softplus(-2) ~ 0.13, near the released init
    for s in ("f", "b"):
        args[f"A_{s}"] = (-torch.rand(e, n, generator=g) * n - 0.5).to(device=device, dtype=dtype).requires_grad_()
    for s in ("f", "b"):
        args[f"D_{s}"] = mk(e)
    return args


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.float() - ref).abs().max() / ref.abs().max().clamp(min=1.0)).item()


def _check_parity(dtype, b, e, l, n, r, joined=False, **kw):
    """joined: the fused op gets xz (B, 2E, L) whole with z None, as the mixer calls it; its gradient is
    compared half by half."""
    args = _make_args(dtype, b, e, l, n, r)
    ref_args = {k: v.detach().float().requires_grad_() for k, v in args.items()}
    grad = torch.randn(b, e, l, generator=torch.Generator().manual_seed(1)).to(DEVICE)  # shared by all runs
    if joined:
        # channels-last like the in_proj output: (B, L, 2E) in memory
        xz = torch.cat([args["x"], args["z"]], 1).detach().transpose(1, 2).contiguous().transpose(1, 2)
        xz.requires_grad_()
        params = {k: v for k, v in args.items() if k not in ("x", "z")}
        out = bidirectional_scan_fused(xz, None, **params, dt_rank=r, d_state=n, **kw)
        g_xz, *g_params = torch.autograd.grad(out, [xz, *params.values()], grad.to(dtype))
        assert g_xz.shape == xz.shape and g_xz.transpose(1, 2).is_contiguous()  # one tensor, channels-last
        grads = [*g_xz.chunk(2, dim=1), *g_params]
    else:
        out = bidirectional_scan_fused(**args, dt_rank=r, d_state=n, **kw)
        grads = torch.autograd.grad(out, list(args.values()), grad.to(dtype))
    ref = bidirectional_scan_ref(**ref_args, dt_rank=r, d_state=n)
    assert out.dtype == dtype and out.shape == (b, e, l)
    ref_grads = torch.autograd.grad(ref, list(ref_args.values()), grad)
    tol_fwd, tol_bwd = TOL[dtype]
    if dtype != torch.float32:
        # NOTE: in half precision the bound also admits twice the error of the reference run in that dtype,
        # which grows with L (the GEMM gradients reduce over B * L terms)
        ref_lp = bidirectional_scan_ref(**args, dt_rank=r, d_state=n)
        lp_grads = torch.autograd.grad(ref_lp, list(args.values()), grad.to(dtype))
        tol_fwd = max(tol_fwd, 2 * _rel_err(ref_lp, ref))
        tol_bwd = max(tol_bwd, 2 * max(_rel_err(g_, r_) for g_, r_ in zip(lp_grads, ref_grads)))
    err = _rel_err(out, ref)
    assert err < tol_fwd, f"forward max rel err {err:.3g} >= {tol_fwd:.3g} ({dtype}, L={l})"
    errs = {name: _rel_err(g_, r_) for name, g_, r_ in zip(args, grads, ref_grads)}
    worst = max(errs, key=errs.get)
    assert errs[worst] < tol_bwd, (f"grad {worst} max rel err {errs[worst]:.3g} >= {tol_bwd:.3g} ({dtype}, L={l}): "
                                   f"{errs}")


# ------------------------------------------------------------------------------ interpreter-sized cases


@pytest.mark.parametrize("l, chunk", [(1, 8), (2, 8), (4, 4), (5, 8), (16, 16), (37, 16), (33, 32), (40, 16)])
def test_fused_matches_reference_fp32(l, chunk):
    # L below, equal to, and not a multiple of the chunk; the two walks meet on a token (odd L) or
    # between two (even L); L = 1 has no step before the walks meet
    _check_parity(torch.float32, b=2, e=8, l=l, n=4, r=2, chunk=chunk, block_e=4)


@pytest.mark.parametrize("l, segments", [(1, 1), (37, 3)])
def test_fused_joined_xz(l, segments):
    # the mixer's call: xz whole, z None; the xz gradient comes back as one tensor with xz's strides
    _check_parity(torch.float32, b=2, e=8, l=l, n=4, r=2, chunk=8, block_e=4, segments=segments, joined=True)


@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize("l, segments", [(37, 2), (37, 3), (40, 4), (9, 9), (9, 5), (6, 4)])
def test_fused_segmented_walk(monkeypatch, l, segments, head):
    # the walk cut into segments (a state pass, then outputs from the composed segment states); uneven
    # last segment, one token per segment, more segments asked for than fit; head: segment 0's output walk
    # beside the state pass, handing on its end state (with 2 segments there is no state pass)
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setattr(fb, "HEAD_SEGMENT_EARLY", head)
    _check_parity(torch.float32, b=2, e=8, l=l, n=4, r=2, chunk=8, block_e=4, segments=segments)


@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize("pieces, l, segments", [(1, 37, 3), (3, 37, 2), (4, 40, 3), (3, 7, 2), (3, 37, 4)])
def test_fused_state_pass_pieces(monkeypatch, pieces, l, segments, head):
    # the segment-state pass cut finer than the output pass (pieces per segment), composed back per segment;
    # (3, 7, 2): one-token pieces, a last segment shorter than the others
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setattr(fb, "STATE_PASS_PIECES", pieces)
    monkeypatch.setattr(fb, "HEAD_STATE_PASS_PIECES", pieces)
    monkeypatch.setattr(fb, "HEAD_SEGMENT_EARLY", head)
    _check_parity(torch.float32, b=2, e=8, l=l, n=4, r=2, chunk=8, block_e=4, segments=segments)


@pytest.mark.parametrize("l, chunk, bwd_segments", [(37, 4, 2), (37, 4, 3), (40, 8, 5), (9, 4, 8), (5, 8, 2)])
def test_fused_walk_backward_segments(l, chunk, bwd_segments):
    # the backward walk cut into pieces of whole chunks: a partial last chunk, an uneven cut, one chunk
    # a segment, more segments asked for than there are chunks
    _check_parity(torch.float32, b=2, e=12, l=l, n=4, r=2, chunk=chunk, block_e=4, segments=2,
                  bwd_segments=bwd_segments)


@pytest.mark.parametrize("backward", ["walk", "chunk"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_bc_in_input_dtype(monkeypatch, dtype, backward):
    # VIM_FUSED_BC=input: the kernels read B and C from the x_proj output in place, 16-bit
    monkeypatch.setenv("VIM_FUSED_BC", "input")
    monkeypatch.setenv("VIM_FUSED_BACKWARD", backward)
    _check_parity(dtype, b=2, e=8, l=21, n=16, r=2, chunk=8, block_e=8, segments=2)


def test_fused_bc_dtype_is_checked(monkeypatch):
    from vim_backbone.ops import fused_bimamba as fb
    from vim_backbone.ops.fused_bimamba import bc_dtype
    monkeypatch.delenv("VIM_FUSED_BC", raising=False)
    for fwd, bwd_walk, bwd in (("gluon", "gluon", "walk"), ("gluon", "triton", "walk"), ("gluon", "gluon", "chunk"),
                               ("triton", "gluon", "walk")):
        monkeypatch.setattr(fb, "forward_kind", lambda *a, k=fwd: k)
        monkeypatch.setattr(fb, "backward_walk_kind", lambda *a, k=bwd_walk: k)
        monkeypatch.setenv("VIM_FUSED_BACKWARD", bwd)
        # inference: in place under the Gluon forward, which stages B and C; training: also only where the walk
        # backward stages them too (the Gluon one), else fp32 copies for the Triton walks backward
        assert bc_dtype(grad=False) == ("input" if fwd == "gluon" else "float32")
        assert bc_dtype() == ("input" if (fwd, bwd_walk, bwd) == ("gluon", "gluon", "walk") else "float32")
    monkeypatch.undo()
    monkeypatch.setenv("VIM_FUSED_BC", "input")
    assert bc_dtype() == "input"
    monkeypatch.setenv("VIM_FUSED_BC", "fp8")
    with pytest.raises(ValueError, match="VIM_FUSED_BC"):
        bc_dtype()


@pytest.mark.parametrize("l, width, pre_tile", [(1, 4, None), (3, 4, None), (37, 4, None), (300, 4, (16, 16, 3, 4)),
                                                (300, 3, (16, 16, 3, 4)), (37, 2, (16, 16, 3, 4))])
def test_fused_conv_backward_twins(monkeypatch, l, width, pre_tile):
    # the Triton conv gradient and its PyTorch twin (VIM_FUSED_CONV_BACKWARD=torch) agree; L shorter than
    # the conv width, a partial token tile; with a small first-step tile (pre_tile), several programs along L
    # (tiles of 16 tokens, 3 a program: 300 = 6 x 48 + 12), partial channel blocks (40 = 2 x 16 + 8), widths 2-4
    from vim_backbone.ops import fused_bimamba as fb
    from vim_backbone.ops.fused_bimamba import _BidirectionalConvSiLU
    if pre_tile is not None:
        monkeypatch.setattr(fb, "CONV_BWD_PRE_TILE", pre_tile)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, l, 40, generator=g).to(DEVICE).transpose(1, 2).requires_grad_()  # channels-last
    w = (torch.randn(2, 40, width, generator=g) * 0.5).to(DEVICE).requires_grad_()
    b = (torch.randn(2, 40, generator=g) * 0.3).to(DEVICE).requires_grad_()
    gu = torch.randn(2, 2, 40, l, generator=g).to(DEVICE)
    grads = {}
    for kind in ("triton", "torch"):
        monkeypatch.setenv("VIM_FUSED_CONV_BACKWARD", kind)
        grads[kind] = torch.autograd.grad(_BidirectionalConvSiLU.apply(x, w, b), (x, w, b), gu)
    for name, a, ref in zip(("x", "weight", "bias"), grads["triton"], grads["torch"]):
        err = (a - ref).abs().max().item()
        assert err < 1e-4 * max(1.0, ref.abs().max().item()), f"grad {name} max err {err}"
    monkeypatch.setenv("VIM_FUSED_CONV_BACKWARD", "cudnn")
    with pytest.raises(ValueError, match="VIM_FUSED_CONV_BACKWARD"):
        torch.autograd.grad(_BidirectionalConvSiLU.apply(x, w, b), (x, w, b), gu)


@pytest.mark.parametrize("terms", [1, 2])
def test_conv_backward_writes_the_z_sum(terms):
    # the conv backward's second kernel also writes z's gradient, the sum of the scan's fp32 terms, in gz's dtype
    # and strides (the channels-last half of a (B, L, 2E) tensor, as in the mixer); gx as without it
    from vim_backbone.ops.fused_bimamba import _conv_backward
    g = torch.Generator().manual_seed(4)
    b, e, l = 2, 40, 37
    x = torch.randn(b, l, e, generator=g).to(DEVICE).transpose(1, 2)
    w = (torch.randn(2, e, 4, generator=g) * 0.5).to(DEVICE)
    bias = (torch.randn(2, e, generator=g) * 0.3).to(DEVICE)
    gu = torch.randn(2, b, e, l, generator=g).to(DEVICE)
    dz = torch.randn(2, b, l, e, generator=g).to(DEVICE).transpose(2, 3)  # channels-last, as the walk writes them
    both = torch.empty(b, l, 2 * e, device=DEVICE, dtype=torch.bfloat16).transpose(1, 2)
    gx_ref = torch.empty(b, l, e, device=DEVICE).transpose(1, 2)
    gw_ref, gb_ref = _conv_backward(x, w, bias, gu, gx_ref)
    gw, gb = _conv_backward(x, w, bias, gu, both[:, :e], both[:, e:], tuple(dz[:terms]))
    bf16 = dict(rtol=2 ** -7, atol=1e-6)  # one bf16 rounding (the interpreter's cast may truncate)
    torch.testing.assert_close(both[:, e:].float(), dz[:terms].sum(0), **bf16)
    torch.testing.assert_close(both[:, :e].float(), gx_ref, **bf16)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb, gb_ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="same strides"):
        _conv_backward(x, w, bias, gu, both[:, :e], both[:, e:], (dz[0], dz[1].contiguous()))
    with pytest.raises(ValueError, match="one or two"):  # gz given, nothing to write into it
        _conv_backward(x, w, bias, gu, both[:, :e], both[:, e:], ())


@pytest.mark.parametrize("backward", ["walk", "chunk"])
def test_fused_backward_adds_du_in_place(monkeypatch, backward):
    # x_proj's input gradient is added into du's memory (baddbmm_): torch.baddbmm first copies du, a (2, B L, E)
    # tensor, into its result (23 us a layer at Vim-Ti's 1024^2 batch 8 on an H200, session 19)
    from torch.utils._python_dispatch import TorchDispatchMode
    monkeypatch.setenv("VIM_FUSED_BACKWARD", backward)
    args = _make_args(torch.float32, 2, 16, 37, 4, 2)
    out = bidirectional_scan_fused(**args, dt_rank=2, d_state=4)
    calls = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(str(func))
            return func(*args, **(kwargs or {}))

    with Log():
        torch.autograd.grad(out.sum(), list(args.values()))
    assert "aten.baddbmm_.default" in calls and "aten.baddbmm.default" not in calls


@pytest.mark.parametrize("l, chunk", [(1, 4), (5, 8), (37, 8), (40, 16)])
def test_fused_chunk_backward(monkeypatch, l, chunk):
    # the chunked backward (VIM_FUSED_BACKWARD=chunk) gives the same gradients; partial last chunk,
    # a channel block that is not full (E = 12, block_e = 8)
    monkeypatch.setenv("VIM_FUSED_BACKWARD", "chunk")
    _check_parity(torch.float32, b=2, e=12, l=l, n=4, r=2, chunk=chunk, block_e=8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_chunk_backward_half(monkeypatch, dtype):
    monkeypatch.setenv("VIM_FUSED_BACKWARD", "chunk")
    _check_parity(dtype, b=2, e=8, l=21, n=4, r=2, chunk=8, block_e=8)


def test_fused_backward_kind_is_checked(monkeypatch):
    from vim_backbone.ops.fused_bimamba import backward_kind
    monkeypatch.delenv("VIM_FUSED_BACKWARD", raising=False)
    assert backward_kind() == "walk"
    monkeypatch.setenv("VIM_FUSED_BACKWARD", "fast")
    with pytest.raises(ValueError, match="VIM_FUSED_BACKWARD"):
        backward_kind()


def test_fused_forward_kind_is_checked(monkeypatch):
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.delenv("VIM_FUSED_FORWARD", raising=False)
    assert fb.forward_kind(block_e=64, num_warps=1) == "triton"  # more channels than lanes: the Triton walk
    if INTERPRET:  # the interpreter does not run Gluon: auto takes Triton, forcing Gluon is refused
        assert fb.forward_kind() == "triton"
        monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
        with pytest.raises(ValueError, match="TRITON_INTERPRET"):
            fb.forward_kind()
    monkeypatch.delenv("VIM_FUSED_FORWARD", raising=False)
    monkeypatch.setattr(torch.version, "hip", "6.0")  # a ROCm build: 64-lane wavefronts, no Gluon walk
    assert fb.forward_kind() == "triton"
    monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
    with pytest.raises(ValueError, match="VIM_FUSED_FORWARD=gluon"):
        fb.forward_kind()
    monkeypatch.undo()
    monkeypatch.setenv("VIM_FUSED_FORWARD", "triton")
    assert fb.forward_kind() == "triton"
    monkeypatch.setenv("VIM_FUSED_FORWARD", "cuda")
    with pytest.raises(ValueError, match="VIM_FUSED_FORWARD"):
        fb.forward_kind()


@pytest.mark.parametrize("num_warps", [1, 2])
def test_fused_other_warp_counts(num_warps):
    _check_parity(torch.float32, b=1, e=16, l=11, n=8, r=2, chunk=4, block_e=16, num_warps=num_warps)


def test_fused_partial_channel_block_and_state_16():
    # E = 12 is not a multiple of BLOCK_E = 8; N = 16 as in Vim
    _check_parity(torch.float32, b=1, e=12, l=19, n=16, r=1, chunk=8, block_e=8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_matches_reference_half(dtype):
    _check_parity(dtype, b=2, e=8, l=21, n=4, r=2, chunk=8, block_e=8)


def test_fused_matches_mixer_directions():
    """The reference twin is the mixer's own composition: compare with ``BiMambaMixer._direction``."""
    mixer = BiMambaMixer(d_model=8, d_state=8, backend="reference").to(DEVICE)
    with torch.no_grad():
        for name, p in mixer.named_parameters():
            if name.startswith(("A", "D")):
                p.add_(0.1 * torch.randn_like(p))
    hidden = torch.randn(2, 11, 8, device=DEVICE)
    backend = get_backend("reference", DEVICE)
    xz = torch.nn.functional.linear(hidden, mixer.in_proj.weight).transpose(1, 2)
    expected = (mixer._direction(backend, xz, "", mixer.A_log, mixer.D)
                + mixer._direction(backend, xz.flip(-1), "_b", mixer.A_b_log, mixer.D_b).flip(-1)) / 2
    x, z = xz.chunk(2, dim=1)
    m = mixer
    got = bidirectional_scan_fused(
        x, z, m.conv1d.weight, m.conv1d.bias, m.conv1d_b.weight, m.conv1d_b.bias, m.x_proj.weight,
        m.x_proj_b.weight, m.dt_proj.weight, m.dt_proj.bias, m.dt_proj_b.weight, m.dt_proj_b.bias,
        -torch.exp(m.A_log.float()), -torch.exp(m.A_b_log.float()), m.D, m.D_b, m.dt_rank, m.d_state,
        chunk=8, block_e=8)
    err = (got - expected).abs().max().item()
    assert err < 1e-5, f"forward max err {err}"
    grad = torch.randn_like(got)
    params = [p for p in mixer.parameters() if p.requires_grad and p is not mixer.out_proj.weight]
    g_got = torch.autograd.grad(got, params, grad, allow_unused=True, retain_graph=True)  # in_proj is shared
    g_exp = torch.autograd.grad(expected, params, grad, allow_unused=True)
    for (name, _), a, b in zip([(n, p) for n, p in mixer.named_parameters() if p is not mixer.out_proj.weight],
                               g_got, g_exp):
        err = (a - b).abs().max().item()
        assert err < 1e-4 * max(1.0, b.abs().max().item()), f"grad {name} max err {err}"


def _saved_bytes_and_grads(args, recompute, **kw):
    """The bytes of the distinct storages the op keeps for its backward, and its gradients."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = bidirectional_scan_fused(**args, recompute=recompute, **kw)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    return sum(storages.values()), torch.autograd.grad(out, list(args.values()), grad)


@pytest.mark.parametrize("dtype, l, segments, bwd_segments", [(torch.float32, 37, 3, 2), (torch.bfloat16, 21, 1, 1)])
def test_fused_recompute_gives_the_same_gradients_from_less(dtype, l, segments, bwd_segments):
    # recompute: the backward makes u, dt and the fp32 B, C again from x and the x_proj output, with the forward's
    # kernels on the same inputs, so every gradient is the same (to the bit under the interpreter; on a GPU the
    # backward's atomic sums may add in another order), and (2, B, E, L) u and dt and the B, C copies are not kept
    b, e, n, r = 2, 8, 4, 2
    args = _make_args(dtype, b, e, l, n, r)
    kw = dict(dt_rank=r, d_state=n, chunk=8, block_e=4, segments=segments, bwd_segments=bwd_segments)
    kept, grads = _saved_bytes_and_grads(args, False, **kw)
    kept_less, grads_re = _saved_bytes_and_grads(args, True, **kw)
    for name, g, g_re in zip(args, grads, grads_re):
        if DEVICE.type == "cpu":
            assert torch.equal(g_re, g), name
        else:
            assert _rel_err(g_re, g.float()) < (1e-5 if dtype == torch.float32 else 1e-2), name
    itemsize = torch.tensor([], dtype=dtype).element_size()
    b_col, c_col, _ = _xproj_columns(r, n)  # the fp32 copy of the x_proj output's B and C columns (bc_dtype)
    bc_bytes = 0 if dtype == torch.float32 else 2 * b * l * (c_col + n - b_col) * 4
    assert kept - kept_less == 2 * (2 * b * e * l * itemsize) + bc_bytes


def test_fused_recompute_parity_joined():
    # the mixer's call (xz whole) with recompute, against the reference
    _check_parity(torch.float32, b=2, e=8, l=37, n=4, r=2, chunk=8, block_e=4, segments=3, joined=True,
                  recompute=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_recompute_with_in_proj(dtype):
    # in_proj inside the node: x is the mixer's input (B, L, D); the node keeps it instead of xz (B, L, 2E) and
    # recomputes xz in the backward; forward and every gradient (in_proj's included) as the op on xz gives them
    from vim_backbone.ops.fused_bimamba import prepare_fused_weights, scan_fused_prepared
    b, e, l, n, r, d = 2, 8, 21, 4, 2, 4
    args = {k: v for k, v in _make_args(dtype, b, e, l, n, r).items() if k not in ("x", "z")}
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(b, l, d, generator=g).to(DEVICE, dtype).requires_grad_()
    in_w = (torch.randn(2 * e, d, generator=g) * d ** -0.5).to(DEVICE, dtype).requires_grad_()
    grad = torch.randn(b, e, l, generator=g).to(DEVICE, dtype)
    kw = dict(chunk=8, block_e=4, segments=2, bwd_segments=2)
    runs = []
    for in_proj in (False, True):
        kept = {}

        def pack(t):
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            weights = prepare_fused_weights(*args.values(), r, n, dtype)
            if in_proj:
                out = scan_fused_prepared(hidden, None, weights, r, n, recompute=True, in_proj_w=in_w, **kw)
            else:
                xz = torch.nn.functional.linear(hidden, in_w).transpose(1, 2)
                out = scan_fused_prepared(xz, None, weights, r, n, recompute=True, **kw)
        leaves = [hidden, in_w, *args.values()]
        runs.append((sum(kept.values()), out, torch.autograd.grad(out, leaves, grad)))
    (kept, out, grads), (kept_in, out_in, grads_in) = runs
    assert torch.equal(out_in, out)
    assert kept - kept_in == b * l * 2 * e * out.element_size()  # xz not kept (hidden and in_w are, either way)
    for name, g_, g_in in zip(["hidden", "in_proj_w", *args], grads, grads_in):
        assert _rel_err(g_in, g_.float()) < (1e-6 if dtype == torch.float32 else 1e-2), name
    # x made again from another tensor in the backward: the same gradients, and x itself not kept
    source = hidden.detach().float() * 2
    kept_from = {}
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept_from.setdefault(id(t), t), lambda t: t):
        weights = prepare_fused_weights(*args.values(), r, n, dtype)
        out_from = scan_fused_prepared(hidden, None, weights, r, n, recompute=True, in_proj_w=in_w,
                                       x_from=(lambda t: (t / 2).to(dtype), source), **kw)
    assert not any(t is hidden for t in kept_from.values()) and any(t is source for t in kept_from.values())
    for name, g_, g_from in zip(["hidden", "in_proj_w", *args], grads_in,
                                torch.autograd.grad(out_from, [hidden, in_w, *args.values()], grad)):
        if DEVICE.type == "cpu":
            assert torch.equal(g_from, g_), name
        else:  # the backward's atomic sums may add in another order
            assert _rel_err(g_from, g_.float()) < (1e-6 if dtype == torch.float32 else 1e-2), name
    weights = prepare_fused_weights(*args.values(), r, n, dtype)
    with pytest.raises(ValueError, match="x_from goes with in_proj_w"):
        scan_fused_prepared(torch.cat([hidden, hidden], -1).transpose(1, 2), None, weights, r, n, recompute=True,
                            x_from=(lambda t: t, source))
    with pytest.raises(ValueError, match="recompute=True"):
        scan_fused_prepared(hidden, None, weights, r, n, in_proj_w=in_w)
    with pytest.raises(ValueError, match="in_proj_w"):
        scan_fused_prepared(hidden, None, weights, r, n, recompute=True, in_proj_w=in_w[:, :3])


def test_fused_without_grad_skips_state_saving():
    args = {k: v.detach() for k, v in _make_args(torch.float32, 1, 8, 9, 4, 2).items()}
    with torch.no_grad():
        out = bidirectional_scan_fused(**args, dt_rank=2, d_state=4, chunk=8, block_e=8)
    ref = bidirectional_scan_ref(**args, dt_rank=2, d_state=4)
    err = (out - ref).abs().max().item()
    assert not out.requires_grad and err < 1e-5, f"forward max err {err}"


def test_fused_rejects_bad_inputs():
    args = {k: v.detach() for k, v in _make_args(torch.float32, 1, 8, 9, 4, 2).items()}
    with pytest.raises(ValueError, match="power of two"):
        bidirectional_scan_fused(**args, dt_rank=4, d_state=3)
    with pytest.raises(ValueError, match="dt_rank \\+ 2 \\* d_state"):
        bidirectional_scan_fused(**args, dt_rank=1, d_state=4)
    args64 = dict(args, x=args["x"].double(), z=args["z"].double())
    with pytest.raises(TypeError, match="bidirectional_scan_ref"):
        bidirectional_scan_fused(**args64, dt_rank=2, d_state=4)
    from vim_backbone.ops.fused_bimamba import prepare_fused_weights, scan_fused_prepared
    weights = prepare_fused_weights(*(v for k, v in args.items() if k not in ("x", "z")), 2, 4, torch.float32)
    with pytest.raises(TypeError, match="bidirectional_scan_ref"):
        scan_fused_prepared(args64["x"], args64["z"], weights, 2, 4)
    with pytest.raises(TypeError, match="weights prepared for torch.float32"):
        scan_fused_prepared(args["x"].half(), args["z"].half(), weights, 2, 4)


def test_fused_available():
    assert fused_available(DEVICE)
    if not INTERPRET:
        assert not fused_available(torch.device("cpu"))


# ------------------------------------------------------------------------------------- GPU-sized cases


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("backward", ["chunk", "walk"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("l", [197, 730, 1025, 4097])
def test_fused_matches_reference_gpu(dtype, l, backward, monkeypatch):
    monkeypatch.setenv("VIM_FUSED_BACKWARD", backward)
    # Vim-Ti inner width (E = 384, R = 12, N = 16); L = tokens of 224/stride 16, stride 8, 512 and 1024 px
    _check_parity(dtype, b=2, e=384, l=l, n=16, r=12)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("e", [384, 200])
def test_fused_joined_gpu(e):
    # the mixer's call (xz whole, one gradient tensor); E = 200: a partial channel block in every kernel
    _check_parity(torch.bfloat16, b=2, e=e, l=4097, n=16, r=12, joined=True)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("e, l", [(384, 4097), (200, 1025)])
def test_fused_recompute_joined_gpu(e, l):
    # recompute on GPU sizes (segmented walks, the compiled kernels), against the reference
    _check_parity(torch.bfloat16, b=2, e=e, l=l, n=16, r=12, joined=True, recompute=True)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("segments, pieces, head", [(None, None, True), (None, None, False), (1, None, True),
                                                    (3, None, True), (2, None, True), (5, None, True),
                                                    (3, None, False), (5, 1, True), (None, 4, False)])
def test_fused_segments_gpu(monkeypatch, segments, pieces, head):
    # the default cut (batch 2: the most segments, no head), none, and uneven cuts; forward and walk
    # backward; the state pass cut into 1 and 4 pieces a segment; segment 0's walk beside the state pass or not
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setattr(fb, "HEAD_SEGMENT_EARLY", head)
    if pieces is not None:
        monkeypatch.setattr(fb, "STATE_PASS_PIECES", pieces)
        monkeypatch.setattr(fb, "HEAD_STATE_PASS_PIECES", pieces)
    _check_parity(torch.bfloat16, b=2, e=384, l=4097, n=16, r=12, segments=segments, bwd_segments=segments)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("kind", ["gluon", "triton"])
@pytest.mark.parametrize("dtype, e, l, segments, block_e, num_warps", [
    (torch.float32, 384, 1025, None, 32, 1), (torch.bfloat16, 200, 4097, None, 32, 1),
    (torch.float16, 384, 197, 1, 32, 1), (torch.bfloat16, 384, 730, 3, 32, 1), (torch.bfloat16, 200, 1025, 2, 64, 2),
    (torch.bfloat16, 384, 1025, None, 16, 1), (torch.float32, 200, 730, 3, 8, 1)])
def test_fused_forward_kinds_gpu(monkeypatch, kind, dtype, e, l, segments, block_e, num_warps):
    # both forward walks against the reference, forward and backward (the backward recomputes from the
    # chunk states the forward saved); E = 200 leaves a partial channel block; two warps a program; a
    # channel's states over 2 and 4 lanes (block_e 16 and 8 on one warp)
    monkeypatch.setenv("VIM_FUSED_FORWARD", kind)
    _check_parity(dtype, b=2, e=e, l=l, n=16, r=12, segments=segments, block_e=block_e, num_warps=num_warps)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("l, n, e, segments", [(1, 16, 32, None), (5, 8, 40, None), (9, 32, 64, 2), (37, 16, 200, 3),
                                               (300, 4, 48, 4)])
def test_gluon_forward_small_and_odd_shapes_gpu(monkeypatch, l, n, e, segments):
    # the staged output pass with fewer tokens than a stage (L = 1, 5), a partial last stage, other state
    # counts (N = 4, 8, 32) and cuts, forward and backward against the reference
    monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
    _check_parity(torch.float32, b=2, e=e, l=l, n=n, r=3, segments=segments)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("batch, l", [(16, 4097), (128, 197), (3, 1025)])
def test_gluon_forward_matches_triton_gpu(monkeypatch, batch, l):
    # inference (no states saved) at the benchmark's shapes with the default cut: the two walks do the same
    # arithmetic but for the order of the sum over the states
    args = {k: v.detach() for k, v in _make_args(torch.bfloat16, batch, 384, l, 16, 12).items()}
    outs = {}
    for kind in ("gluon", "triton"):
        monkeypatch.setenv("VIM_FUSED_FORWARD", kind)
        outs[kind] = bidirectional_scan_fused(**args, dt_rank=12, d_state=16).float()
    scale = outs["triton"].abs().max().clamp(min=1.0)
    assert ((outs["gluon"] - outs["triton"]).abs().max() / scale).item() < 1e-2


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b, e, l, n, bwd_segments", [(2, 384, 4097, 16, None), (3, 200, 1025, 16, 3),
                                                      (2, 72, 197, 8, 1), (1, 40, 70, 4, 2)])
def test_gluon_walk_backward_gpu(monkeypatch, dtype, b, e, l, n, bwd_segments):
    # the Gluon walk backward (a channel a lane) against the reference, and against the Triton walk backward: the
    # same gradients but for the order of the sums; partial channel blocks (E = 200, 72, 40), one segment and
    # several, other state sizes
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "gluon")
    _check_parity(dtype, b=b, e=e, l=l, n=n, r=12, bwd_segments=bwd_segments)
    args = _make_args(dtype, b, e, l, n, 12)
    grad = torch.randn(b, e, l, generator=torch.Generator().manual_seed(1)).to(DEVICE, dtype)
    grads, launched = {}, []
    real = fb.load_gluon_kernels

    class Spy:  # records which Gluon kernels each setting launches
        def __getattr__(self, name):
            launched.append((os.environ["VIM_FUSED_BACKWARD_WALK"], name))
            return getattr(real(), name)

    monkeypatch.setattr(fb, "load_gluon_kernels", Spy)
    for kind in ("gluon", "triton"):
        monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", kind)
        out = bidirectional_scan_fused(**args, dt_rank=12, d_state=n, bwd_segments=bwd_segments)
        grads[kind] = torch.autograd.grad(out, list(args.values()), grad)
    walks = [kind for kind, name in launched if name == "_scan_bwd_walk_gluon_kernel"]
    assert walks == ["gluon"]  # the Gluon walk backward ran once, and not for VIM_FUSED_BACKWARD_WALK=triton
    for name, g_gluon, g_triton in zip(args, grads["gluon"], grads["triton"]):
        assert _rel_err(g_gluon, g_triton.float()) < (1e-4 if dtype == torch.float32 else 2e-2), name


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("l, bwd_segments", [(1000, 3), (4097, None)])
def test_gluon_bwd_summary_pieces_gpu(monkeypatch, l, bwd_segments):
    # the walk backward's summaries taken in pieces give the same gradients as in one (fp32; E = 200, a partial
    # channel block): at L = 1000 (32 chunks, 3 segments of 11, 11, 10) 2 pieces, 4 (3, 3, 3, 2 chunks) and 16
    # (empty pieces)
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "gluon")
    args = _make_args(torch.float32, 2, 200, l, 16, 12)
    grad = torch.randn(2, 200, l, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    grads = {}
    for pieces in (1, 2, 4, 16):
        monkeypatch.setattr(fb, "GLUON_BWD_SUMMARY_PIECES", pieces)
        out = bidirectional_scan_fused(**args, dt_rank=12, d_state=16, bwd_segments=bwd_segments)
        grads[pieces] = torch.autograd.grad(out, list(args.values()), grad)
    for pieces, gs in grads.items():
        for name, g, g_ref in zip(args, gs, grads[1]):
            assert _rel_err(g, g_ref) < 1e-5, (pieces, name)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gluon_fwd_sum_chains_gpu(monkeypatch, dtype):
    # the output pass's sum over the states as 1, 2 or 4 chains gives gl.sum's outputs up to the order of the
    # additions, with and without a cut (E = 200, a partial channel block; L = 1000)
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
    args = {k: v.detach() for k, v in _make_args(dtype, 2, 200, 1000, 16, 12).items()}
    for segments in (None, 3):
        outs = {}
        for chains in (0, 1, 2, 4):
            monkeypatch.setattr(fb, "GLUON_FWD_SUM_CHAINS", chains)
            outs[chains] = bidirectional_scan_fused(**args, dt_rank=12, d_state=16, segments=segments).float()
        for chains, out in outs.items():
            assert _rel_err(out, outs[0]) < (1e-5 if dtype == torch.float32 else 1e-2), (segments, chains)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gluon_bwd_sum_chains_gpu(monkeypatch, dtype):
    # the walk backward's sums over the states as 1, 2 or 4 chains give gl.sum's gradients up to the order of the
    # additions (E = 200, a partial channel block; L = 1000, 3 segments)
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "gluon")
    args = _make_args(dtype, 2, 200, 1000, 16, 12)
    grad = torch.randn(2, 200, 1000, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)
    grads = {}
    for chains in (0, 1, 2, 4):
        monkeypatch.setattr(fb, "GLUON_BWD_SUM_CHAINS", chains)
        out = bidirectional_scan_fused(**args, dt_rank=12, d_state=16, bwd_segments=3)
        grads[chains] = torch.autograd.grad(out, list(args.values()), grad)
    for chains, gs in grads.items():
        for name, g, g_ref in zip(args, gs, grads[0]):
            assert _rel_err(g.float(), g_ref.float()) < (1e-5 if dtype == torch.float32 else 1e-2), (chains, name)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("e, n", [(200, 16), (72, 8)])
def test_gluon_bwd_split_gpu(monkeypatch, dtype, e, n):
    # the walk backward with a channel's states over 2 or 4 lanes gives the gradients of a channel a lane up to the
    # order of the sums over the states (partial channel blocks: E = 200, 72; L = 1000, 3 segments; N = 16, 8), and
    # its grid covers every channel (the summaries keep a channel a lane)
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "gluon")
    args = _make_args(dtype, 2, e, 1000, n, 12)
    grad = torch.randn(2, e, 1000, generator=torch.Generator().manual_seed(3)).to(DEVICE, dtype)
    grads = {}
    for split in (1, 2, 4):
        monkeypatch.setattr(fb, "GLUON_BWD_SPLIT", split)
        out = bidirectional_scan_fused(**args, dt_rank=12, d_state=n, bwd_segments=3)
        grads[split] = torch.autograd.grad(out, list(args.values()), grad)
    for split, gs in grads.items():
        for name, g, g_ref in zip(args, gs, grads[1]):
            assert _rel_err(g.float(), g_ref.float()) < (1e-5 if dtype == torch.float32 else 1e-2), (split, name)


def test_backward_walk_kind_is_checked(monkeypatch):
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "warp")
    with pytest.raises(ValueError, match="VIM_FUSED_BACKWARD_WALK"):
        fb.backward_walk_kind()
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "triton")
    assert fb.backward_walk_kind() == "triton"
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "auto")
    monkeypatch.setattr(fb, "_interpreting", lambda: True)
    assert fb.backward_walk_kind() == "triton"  # the interpreter does not run Gluon
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "gluon")
    with pytest.raises(ValueError, match="no TRITON_INTERPRET"):
        fb.backward_walk_kind()
    monkeypatch.setattr(fb, "_interpreting", lambda: False)
    monkeypatch.setattr(fb, "_gluon_importable", lambda: True)
    monkeypatch.setattr(fb.torch.version, "hip", None)
    with pytest.raises(ValueError, match="divides 32"):
        fb.backward_walk_kind(state=24)
    monkeypatch.setattr(fb, "GLUON_BWD_SPLIT", 4)
    with pytest.raises(ValueError, match="multiple of GLUON_BWD_SPLIT"):
        fb.backward_walk_kind(state=2)
    assert fb.backward_walk_kind(state=4) == "gluon"
    monkeypatch.setenv("VIM_FUSED_BACKWARD_WALK", "auto")
    assert fb.backward_walk_kind() == "gluon" and fb.backward_walk_kind(state=24) == "triton"
    monkeypatch.setattr(fb, "_gluon_bwd_failure", "RuntimeError: PassManager::run failed")
    assert fb.backward_walk_kind() == "triton"


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("backward", ["walk", "chunk"])
@pytest.mark.parametrize("e, bwd_segments", [(384, None), (200, 3)])
def test_fused_bc_input_gpu(monkeypatch, backward, e, bwd_segments):
    # B and C read in place as 16-bit values, with both backwards; a partial channel block (E = 200)
    monkeypatch.setenv("VIM_FUSED_BC", "input")
    monkeypatch.setenv("VIM_FUSED_BACKWARD", backward)
    _check_parity(torch.bfloat16, b=2, e=e, l=1025, n=16, r=12, bwd_segments=bwd_segments)


def _mixer_inference_case(monkeypatch, b, l, d=16, dtype=torch.bfloat16, segments=None):
    # the mixer's forward without autograd (two in_proj GEMMs, the walks' outputs written over dt, tensors
    # dropped early): the values of the op under autograd, with and without the outputs over dt
    from vim_backbone.ops import fused_bimamba as fb
    torch.manual_seed(0)
    mixer = BiMambaMixer(d, backend="fused").to(DEVICE)
    h = torch.randn(b, l, d, device=DEVICE)
    kw = dict(device_type=DEVICE.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.autocast(**kw):
        expected = mixer(h.requires_grad_()).detach()  # the autograd op
    h = h.detach()
    with torch.no_grad(), torch.autocast(**kw):
        weights = mixer._fused_weights(dtype)
        args = (h, mixer.in_proj.weight, mixer.out_proj.weight, weights, mixer.dt_rank, mixer.d_state)
        walks, seen = fb._walks, []

        def spy(u, dt, *rest, **kw):  # records whether the outputs went over dt
            y, states = walks(u, dt, *rest, **kw)
            seen.append(y.data_ptr() == dt.data_ptr())
            return y, states

        monkeypatch.setattr(fb, "_walks", spy)
        out = fb.fused_mixer_inference(*args, segments=segments)
        assert seen == [True]
        monkeypatch.setattr(fb, "y_strides", lambda *shape: None)  # no layout matches: y gets its own tensor
        separate = fb.fused_mixer_inference(*args, segments=segments)
        assert seen == [True, False]
        assert torch.equal(mixer(h), fb.fused_mixer_inference(*args))  # the mixer's inference path is this function
        assert seen == [True, False, False, False]
    assert out.dtype == dtype and torch.equal(out, separate)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert _rel_err(out, expected.float()) < tol


@pytest.mark.parametrize("dtype, segments", [(torch.float32, 1), (torch.bfloat16, 3)])
def test_fused_mixer_inference(monkeypatch, dtype, segments):
    _mixer_inference_case(monkeypatch, b=2, l=37, dtype=dtype, segments=segments)


@cuda_only
@pytest.mark.parametrize("b, l, d", [(2, 4097, 192), (16, 1025, 192), (64, 197, 384)])
def test_fused_mixer_inference_gpu(monkeypatch, b, l, d):
    _mixer_inference_case(monkeypatch, b=b, l=l, d=d)


def _gate_out_proj_case(b, l, d, e, dtype):
    # the one-kernel tail against its unfused form (z GEMM, _gate_sum, out_proj GEMM) in the same dtype,
    # both measured against the tail computed in fp32 from the same inputs
    from vim_backbone.ops import fused_bimamba as fb
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, b, l, e, generator=g).to(DEVICE, dtype).transpose(2, 3)  # the walks' layout
    hidden = torch.randn(b, l, d, generator=g).to(DEVICE, dtype)
    z_w = (torch.randn(e, d, generator=g) / d ** 0.5).to(DEVICE, dtype)
    out_w = (torch.randn(d, e, generator=g) / e ** 0.5).to(DEVICE, dtype)
    out = fb._gate_out_proj(y, hidden, z_w, out_w, fused=True)
    assert out.shape == (b, l, d) and out.dtype == dtype and out.is_contiguous()
    with torch.no_grad():
        unfused = F.linear(fb._gate_sum(y, F.linear(hidden, z_w).transpose(1, 2)).transpose(1, 2), out_w)
        zf = F.linear(hidden.float(), z_w.float())
        ref = F.linear(((y[0] + y[1]).float() * F.silu(zf).transpose(1, 2) / 2).transpose(1, 2), out_w.float())
        # the default: the kernel for 16-bit weights, the unfused three for fp32 (TAIL_FUSED_FP32)
        default = fb._gate_out_proj(y, hidden, z_w, out_w)
    assert torch.equal(default, out if dtype != torch.float32 else unfused)
    if dtype == torch.float32:
        assert _rel_err(out, ref) < 1e-5
    elif INTERPRET:  # the interpreter's casts to bf16 truncate (Triton 3.8): a bias toward zero, ~1% here
        assert _rel_err(out, ref) < 3e-2
    else:  # no less accurate than the unfused tail: only the summation order and z's rounding can differ
        assert _rel_err(out, ref) <= 1.5 * _rel_err(unfused, ref) + 1e-3
        assert _rel_err(out, unfused) < 2e-2


@pytest.mark.parametrize("b, l, d, e", [(1, 5, 16, 32), (2, 37, 24, 48), (1, 70, 40, 80)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gate_out_proj_matches_unfused_tail(b, l, d, e, dtype):
    _gate_out_proj_case(b, l, d, e, dtype)


@cuda_only
@pytest.mark.parametrize("b, l, d, e", [(2, 4097, 192, 384), (64, 197, 384, 768), (3, 1025, 768, 1536),
                                        (1, 300, 200, 400)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gate_out_proj_matches_unfused_tail_gpu(b, l, d, e, dtype):
    _gate_out_proj_case(b, l, d, e, dtype)


def test_out_parts_cover_d_in_power_of_two_tiles():
    from vim_backbone.ops.fused_bimamba import _out_parts
    for d in (8, 16, 24, 100, 192, 200, 256, 384, 768, 1024):
        d0, d1 = _out_parts(d)
        assert d0 + d1 >= d and min(d0, d1) >= 16 and d0 & (d0 - 1) == 0 and d1 & (d1 - 1) == 0
        assert d0 < d or d < 32  # two real parts whenever D allows
    assert _out_parts(192) == (128, 64) and _out_parts(384) == (256, 128) and _out_parts(768) == (512, 256)


def test_tail_configs_fit_shared_memory():
    from vim_backbone.ops import fused_bimamba as fb
    h100 = 232448 - 4096  # sm_90's opt-in limit, less the margin
    default = (fb.OUT_BLOCK_M, fb.OUT_BLOCK_K, fb.OUT_NUM_STAGES)
    assert fb._tail_configs(192, 2, h100)[0] == default  # Vim-Ti (D0 + D1 = 192), bf16
    for d, itemsize in ((192, 2), (384, 2), (768, 2), (192, 4), (768, 4)):
        configs = fb._tail_configs(d, itemsize, h100)
        assert fb.tail_shared_memory(*configs[0], d, itemsize) <= h100  # the first fits
        assert len(configs) == 1 or fb.tail_shared_memory(*configs[1], d, itemsize) <= fb.tail_shared_memory(
            *configs[0], d, itemsize)  # and what follows is no larger
    assert fb._tail_configs(768, 2, h100)[0] == (fb.OUT_BLOCK_M, 16, 2)  # Vim-B: narrower steps
    assert fb._tail_configs(768, 2, 100 * 1024)[0] == (32, 16, 1)  # a GPU with 100 KB
    assert fb._tail_configs(192, 2, None)[0] == default and len(fb._tail_configs(192, 2, None)) > 1
    # what Triton 3.6 reported needing on an H100 for five configs at D = 192, bf16 (docs/RESULTS.md, session 11)
    assert fb.tail_shared_memory(64, 128, 2, 192, 2) == 253952
    assert fb.tail_shared_memory(128, 64, 3, 192, 2) == 262144


def test_tail_falls_back_when_triton_runs_out_of_shared_memory(monkeypatch):
    # a launch that Triton refuses for shared memory moves on to the next config, and later calls start there;
    # any other error is raised
    from vim_backbone.ops import fused_bimamba as fb

    class OutOfResources(Exception):
        pass

    launched = []

    class Kernel:
        def __getitem__(self, grid):
            def launch(*args, BLOCK_M, BLOCK_K, num_stages, **kw):
                launched.append((BLOCK_M, BLOCK_K, num_stages))
                if len(launched) == 1:
                    raise OutOfResources("shared memory")
                if BLOCK_K == -1:
                    raise ValueError("not a resource error")
            return launch

    monkeypatch.setattr(fb, "load_fused_kernels", lambda: type("K", (), {"_gate_out_proj_kernel": Kernel()}))
    monkeypatch.setattr(fb, "_tail_start", {})
    y = torch.zeros(2, 1, 8, 3).transpose(2, 3)
    args = (y, torch.zeros(1, 3, 16), torch.zeros(8, 16), torch.zeros(16, 8))
    fb._gate_out_proj(*args, fused=True)
    configs = fb._tail_configs(32, 4, None)
    assert launched == configs[:2]
    fb._gate_out_proj(*args, fused=True)
    assert launched == configs[:2] + configs[1:2]  # starts at the config that ran
    monkeypatch.setattr(fb, "OUT_BLOCK_K", -1)
    with pytest.raises(ValueError):
        fb._gate_out_proj(*args, fused=True)


def _model_parity_case(monkeypatch, model_kw, hw, dtype, tol):
    # a whole Vim without gradients: the fused backend's inference path (the walks, the one-kernel tail) against
    # the pure-PyTorch reference backend in fp32, on weights moved off their symmetric init
    import vim_backbone as vim
    from vim_backbone.ops import fused_bimamba as fb
    tails, tail = [], fb._gate_out_proj
    monkeypatch.setattr(fb, "_gate_out_proj", lambda *a, **kw: tails.append(1) or tail(*a, **kw))
    torch.manual_seed(0)
    ref = vim.VisionMamba(**model_kw, scan_backend="reference").to(DEVICE).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    fused = vim.VisionMamba(**model_kw, scan_backend="fused").to(DEVICE).eval()
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, *hw, device=DEVICE)
    with torch.no_grad():
        expected = ref.forward_features(x)
        with torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype != torch.float32):
            out = fused.forward_features(x)
    assert out.shape == expected.shape and len(tails) == model_kw["depth"]  # every block took the fused tail
    assert _rel_err(out, expected) < tol


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.bfloat16, 5e-2)])
def test_model_fused_inference_matches_reference(monkeypatch, dtype, tol):
    tiny = dict(embed_dim=32, depth=2, d_state=4, img_size=32, num_classes=0)
    _model_parity_case(monkeypatch, tiny, (32, 48), dtype, tol)


@cuda_only
@pytest.mark.parametrize("hw", [(224, 224), (160, 288)])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-3), (torch.bfloat16, 5e-2)])
def test_model_fused_inference_matches_reference_gpu(monkeypatch, hw, dtype, tol):
    _model_parity_case(monkeypatch, dict(embed_dim=192, depth=24, img_size=224, num_classes=0), hw, dtype, tol)


def test_weight_grad_matches_batched_linear():
    # the x_proj / dt_proj weight gradients of both directions, one GEMM a direction: autograd's values
    from vim_backbone.ops.fused_bimamba import _weight_grad
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 6, generator=g, dtype=torch.float64)
    w = torch.randn(2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 37, 5, generator=g, dtype=torch.float64)
    (ref,) = torch.autograd.grad(torch.bmm(x, w.transpose(1, 2)), (w,), grad)
    torch.testing.assert_close(_weight_grad(grad, x), ref)


def test_default_segments():
    from vim_backbone.ops.fused_bimamba import MAX_SEGMENTS, SEGMENT_MIN_TOKENS, default_segments
    assert default_segments(programs=10 ** 6, length=4097) == 1  # the GPU is already full
    assert default_segments(programs=1, length=10 ** 6) == MAX_SEGMENTS
    assert default_segments(programs=1, length=3 * SEGMENT_MIN_TOKENS) == 3  # no piece below the minimum
    assert default_segments(programs=1, length=SEGMENT_MIN_TOKENS - 1) == 1


def test_gluon_bwd_segments():
    # whole waves of resident programs (132 SMs x 8): the cuts measured best on an H200 (session 16), 11 segments for
    # Vim-Ti's 192 programs at 1024^2 (batch 8, 2 waves) and 96 at 1248^2 (batch 4, 1 wave)
    from vim_backbone.ops.fused_bimamba import GLUON_BWD_MAX_SEGMENTS, SEGMENT_MIN_TOKENS, gluon_bwd_segments
    assert gluon_bwd_segments(12 * 8 * 2, 4097, 132) == 11
    assert gluon_bwd_segments(12 * 4 * 2, 6085, 132) == 11
    assert gluon_bwd_segments(12 * 128 * 2, 197, 132) == 1  # too short to cut
    assert gluon_bwd_segments(12 * 16 * 2, 4097, 132) == 11  # 4224 programs, 4 waves
    assert gluon_bwd_segments(1056, 4097, 132) == 1  # one full wave already
    assert gluon_bwd_segments(1, 10 ** 6, 132) == GLUON_BWD_MAX_SEGMENTS
    assert gluon_bwd_segments(1, 3 * SEGMENT_MIN_TOKENS, 132) == 3
    for programs in (1, 7, 96, 192, 500, 1000, 3000):  # never worse than not cutting, in waves a segment's length
        s = gluon_bwd_segments(programs, 4097, 132)
        assert -(-programs * s // 1056) / s <= -(-programs // 1056)


def test_gluon_bwd_residency(monkeypatch):
    # sm_90 (65536 registers, 228 KiB of shared memory an SM): the compiler's 243-255 registers hold 8 one-warp
    # programs; a cap of 168 holds 12, of 144 14; at 128 the shared memory (14336 + 1024 bytes a program) is the
    # bound, 15. The shared memory of Vim-Ti's bf16 walk (CHUNK 32, N 16) as the sm_90 compile reported it.
    from vim_backbone.ops import fused_bimamba as fb
    from vim_backbone.ops.fused_bimamba import (GLUON_BWD_NUM_WARPS, gluon_bwd_residency, gluon_bwd_segments,
                                                gluon_bwd_shared_memory)
    if GLUON_BWD_NUM_WARPS != 1:
        pytest.skip("sizes below are for one-warp programs")
    monkeypatch.setattr(fb, "GLUON_BWD_SPLIT", 2)  # 16 channels a program: half the staged operands and sums tile
    assert gluon_bwd_shared_memory(32, 16, [2, 2, 2, 2]) == 9216  # as the sm_90 compile reported it
    monkeypatch.setattr(fb, "GLUON_BWD_SPLIT", 1)
    shared = gluon_bwd_shared_memory(32, 16, [2, 2, 2, 2])
    assert shared == 14336
    assert gluon_bwd_shared_memory(32, 16, [4, 4, 4, 4]) == 22528  # fp32 operands
    assert gluon_bwd_residency(None, shared) == 8
    assert gluon_bwd_residency(243, shared) == 8
    assert gluon_bwd_residency(168, shared) == 12
    assert gluon_bwd_residency(144, shared) == 14
    assert gluon_bwd_residency(128, shared) == 15
    assert gluon_bwd_residency(32, 0) == 32  # the per-SM block limit
    assert gluon_bwd_residency(168, 22528) == 9  # fp32 operands: shared memory bounds it
    # the SM's resources as torch reports them, sm_90's where an older torch does not
    import types
    from vim_backbone.ops import fused_bimamba as fb
    props = {"new": types.SimpleNamespace(multi_processor_count=78, regs_per_multiprocessor=32768,
                                          shared_memory_per_multiprocessor=102400),
             "old": types.SimpleNamespace(multi_processor_count=132)}
    for name, want in (("new", (78, 32768, 102400)), ("old", (132, 65536, 233472))):
        fb._sm_resources.cache_clear()
        monkeypatch.setattr(fb.torch.cuda, "get_device_properties", lambda device, p=props[name]: p)
        assert fb._sm_resources(torch.device("cuda", 0)) == want
    fb._sm_resources.cache_clear()
    # the cut follows the residency: Vim-Ti 1024^2 batch 8 (192 programs a segment) at 12 an SM: 8 segments fill
    # one wave of 1584 slots; at 1248^2 batch 4 (96 programs) the most segments, 16, still fit in one
    assert gluon_bwd_segments(192, 4097, 132, per_sm=12) == 8
    assert gluon_bwd_segments(96, 6085, 132, per_sm=12) == 16


@pytest.mark.parametrize("head", [True, False])
def test_forward_segments(monkeypatch, head):
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.setattr(fb, "HEAD_SEGMENT_EARLY", head)
    target = fb.SEGMENT_TARGET_PROGRAMS
    # Vim-Ti at batch 16 (384 walks of one warp): 4 segments fill the target; segment 0 beside the state pass
    # leaves 3 for the launch after it, so one more
    assert fb.forward_segments(target // 4, 4097) == (5 if head else 4)
    assert fb.forward_segments(target // 2, 4097) == (3 if head else 2)
    assert fb.forward_segments(target, 4097) == 1  # no cut, no head
    assert fb.forward_segments(target // 4, 4 * fb.SEGMENT_MIN_TOKENS) == 4  # the token floor holds
    # the longest cut, one more with segment 0 beside the state pass, where a segment has enough programs
    many = fb.HEAD_MIN_PROGRAMS
    assert fb.forward_segments(many, 10 ** 6) == fb.MAX_SEGMENTS + (head and fb.HEAD_MAX_SEGMENTS > fb.MAX_SEGMENTS)
    assert fb.forward_segments(many // 2, 10 ** 6) == fb.MAX_SEGMENTS
    monkeypatch.setattr(fb, "HEAD_MAX_SEGMENTS", 5)
    assert fb.forward_segments(many, 10 ** 6) == fb.MAX_SEGMENTS  # cuts of more than 4: no head
    assert fb._head_early(5, many) == head and not fb._head_early(6, many) and not fb._head_early(1, many)
    assert not fb._head_early(5, many - 1)


def test_walk_cut_launches(monkeypatch):
    """The launches of a cut walk: with segment 0 beside the state pass, the state pass cuts each segment into
    HEAD_STATE_PASS_PIECES pieces; without it, into STATE_PASS_PIECES."""
    from vim_backbone.ops import fused_bimamba as fb
    launches = []

    def run(grid, *args, WRITE_Y, SUB, SEGMENTS, HEAD=False, **kwargs):
        launches.append((WRITE_Y, grid[2], SUB, SEGMENTS, HEAD))

    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: _fake_gluon_module(run))
    monkeypatch.setattr(fb, "forward_kind", lambda *a, **k: "gluon")
    monkeypatch.setattr(fb, "STATE_PASS_PIECES", 4)
    monkeypatch.setattr(fb, "HEAD_STATE_PASS_PIECES", 1)
    e, l, n = 8, 64, 4
    args = [torch.zeros(2, 2, e, l), torch.zeros(2, 2, e, l), torch.zeros(2, 2, n, l), torch.zeros(2, 2, n, l),
            torch.zeros(2, e, n), torch.zeros(2, e), torch.zeros(2, e)]
    programs = 2 * 2  # one channel block, batch 2, 2 directions
    for min_programs, head in ((programs, True), (programs + 1, False)):
        monkeypatch.setattr(fb, "HEAD_MIN_PROGRAMS", min_programs)
        launches.clear()
        fb._walks(*args, torch.float32, block_e=8, chunk=8, num_warps=1, segments=4, store_states=False)
        if head:  # segment 0's walk, the state pass of segments 1 and 2 in one piece each, segments 1 ... 3
            assert launches == [(True, 2, 1, 4, True), (False, 2 * 2, 1, 4, False), (True, 2 * 3, 1, 4, True)]
        else:  # the state pass of segments 0 ... 2 in 4 pieces each, then all 4 segments
            assert launches == [(False, 2 * 12, 4, 4, False), (True, 2 * 4, 4, 4, False)]


def test_mixer_dispatches_to_fused_backend():
    """The mixer's fused branch (one op, no flips) equals its two-direction reference path."""
    torch.manual_seed(0)
    ref = BiMambaMixer(16, d_state=4, backend="reference").to(DEVICE)
    fused = BiMambaMixer(16, d_state=4, backend="fused").to(DEVICE)
    fused.load_state_dict(ref.state_dict())
    h = torch.randn(2, 13, 16, device=DEVICE, requires_grad=True)
    out_ref, out = ref(h), fused(h)
    g = torch.randn_like(out)
    (gh_ref,) = torch.autograd.grad(out_ref, h, g)
    (gh,) = torch.autograd.grad(out, h, g)
    err = (out - out_ref).abs().max().item()
    assert err < 1e-4, f"forward max err {err}"
    err = (gh - gh_ref).abs().max().item()
    assert err < 1e-4, f"input grad max err {err}"
    assert get_backend("fused", DEVICE).bidirectional is bidirectional_scan_fused


def test_mixer_fused_parameter_gradients_match_reference():
    """Every parameter's gradient through the mixer's fused training path (A = -exp(A_log) made inside the
    weights' node) against the two-direction reference path."""
    torch.manual_seed(0)
    ref = BiMambaMixer(16, d_state=4, backend="reference").to(DEVICE)
    fused = BiMambaMixer(16, d_state=4, backend="fused").to(DEVICE)
    with torch.no_grad():  # A away from the released init, so that A_log's gradient is not special
        ref.A_log.add_(torch.randn(ref.A_log.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE) * 0.3)
    fused.load_state_dict(ref.state_dict())
    h = torch.randn(2, 13, 16, device=DEVICE)
    g = torch.randn(2, 13, 16, device=DEVICE)
    got = torch.autograd.grad(fused(h), list(fused.parameters()), g)
    want = torch.autograd.grad(ref(h), list(ref.parameters()), g)
    for (name, _), a, b in zip(fused.named_parameters(), got, want):
        err = ((a - b).abs().max() / b.abs().max().clamp(min=1.0)).item()
        assert err < 1e-4, f"{name}: {err}"


def test_mixer_fused_rejects_state_not_power_of_two():
    mixer = BiMambaMixer(16, d_state=12, backend="fused").to(DEVICE)
    h = torch.randn(1, 5, 16, device=DEVICE)
    with pytest.raises(ValueError, match="power of two"):
        mixer(h)
    with torch.no_grad(), pytest.raises(ValueError, match="power of two"):
        mixer(h)


@pytest.mark.gpu
@cuda_only
def test_mixer_inference_keeps_no_projection_copies_gpu():
    # a fused mixer's first call without gradients under autocast leaves its prepared scan weights allocated
    # and nothing else: no bf16 copy of in_proj (or out_proj) outlives the call
    h = torch.randn(2, 197, 192, device=DEVICE)
    warm = BiMambaMixer(192, backend="fused").to(DEVICE)  # Vim-Ti's width
    mixer = BiMambaMixer(192, backend="fused").to(DEVICE)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        warm(h)  # allocations a first call in the process makes once (cuBLAS workspace, ...) before the count
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        out = mixer(h)
        del out
        left = torch.cuda.memory_allocated() - before
    prepared = sum(t.numel() * t.element_size() for t in mixer.__dict__["_kept"]["fused"][1])
    assert set(mixer.__dict__["_kept"]) == {"fused"}
    half_in_proj_bf16 = mixer.in_proj.weight.numel()  # bytes: half the rows, two bytes each
    assert prepared <= left < prepared + half_in_proj_bf16


def test_mixer_keeps_prepared_weights_without_grad():
    """Without gradients the mixer reuses its prepared fused weights until a parameter or the dtype changes."""
    torch.manual_seed(0)
    mixer = BiMambaMixer(16, d_state=4, backend="fused").to(DEVICE)
    h = torch.randn(2, 13, 16, device=DEVICE)
    expected = mixer(h).detach()  # gradients on: prepared afresh, nothing kept
    assert "fused" not in mixer.__dict__.get("_kept", {})
    with torch.no_grad():
        first = mixer(h)
        cached = mixer.__dict__["_kept"]["fused"]
        second = mixer(h)
        assert mixer.__dict__["_kept"]["fused"] is cached  # reused
    with torch.inference_mode():
        third = mixer(h)
    for out in (second, third):
        torch.testing.assert_close(out, first, rtol=0, atol=0)
    # on CUDA the inference tail (one kernel for z, the gate and out_proj) sums in another order than the
    # training path's GEMMs
    torch.testing.assert_close(first, expected)
    with torch.no_grad():
        mixer.x_proj_b.weight.mul_(1.5)  # in place, as an optimizer step: the version changes
        mixer.A_b_log.add_(0.1)
        changed = mixer(h)
    assert mixer.__dict__["_kept"]["fused"] is not cached
    fresh = copy.deepcopy(mixer)
    assert "_kept" not in fresh.__dict__  # derived state stays behind
    with torch.no_grad():
        torch.testing.assert_close(changed, fresh(h), rtol=0, atol=0)  # = prepared afresh
    assert (changed - expected).abs().max() > 1e-5  # the new weights took effect
    mixer.load_state_dict({k: v.clone() for k, v in mixer.state_dict().items()})  # copy_ into the parameters
    with torch.no_grad():
        mixer(h)
    assert mixer.__dict__["_kept"]["fused"][0] != cached[0]


def test_mixer_scan_params_are_all_but_the_projections():
    # the kept prepared weights are keyed on these: a parameter missing here would go stale unnoticed
    mixer = BiMambaMixer(16, d_state=4, backend="fused")
    projections = {id(mixer.in_proj.weight), id(mixer.out_proj.weight)}
    others = [p for p in mixer.parameters() if id(p) not in projections]
    assert sorted(map(id, mixer._scan_params())) == sorted(map(id, others))


@pytest.mark.parametrize("dtype, conv_bias, a_log", [(torch.float32, True, False), (torch.bfloat16, False, False),
                                                     (torch.float32, True, True), (torch.bfloat16, True, True)])
def test_prepare_weights_one_node_matches_composed_autograd(dtype, conv_bias, a_log):
    """``prepare_fused_weights`` under autograd is one node (``_PrepareWeights``) whose gradients equal
    those of the composed PyTorch preparation, for every parameter; a missing conv bias gets none. With
    ``a_log`` the A arguments are A_log, and A = -exp(A_log) is made inside the node."""
    from vim_backbone.ops.fused_bimamba import _prepare, prepare_fused_weights
    g = torch.Generator().manual_seed(0)
    e, w, r, n = 12, 4, 3, 4  # dt_rank 3: padding columns before B and between B and C

    def p(*shape):
        return torch.randn(*shape, generator=g).requires_grad_()

    params = [p(e, 1, w), p(e) if conv_bias else None, p(e, 1, w), p(e) if conv_bias else None, p(r + 2 * n, e),
              p(r + 2 * n, e), p(e, r), p(e), p(e, r), p(e), p(e, n), p(e, n), p(e), p(e)]
    prepared = prepare_fused_weights(*params, r, n, dtype, a_log=a_log)
    assert prepared.x_proj_w.grad_fn is prepared.A.grad_fn  # one node for all seven outputs
    with torch.enable_grad():
        composed = _prepare(*params, r, n, dtype, a_log)
    if a_log:  # what the mixer computed itself before: -exp of each direction's A_log
        torch.testing.assert_close(prepared.A, torch.stack([-torch.exp(params[10]), -torch.exp(params[11])]),
                                   rtol=0, atol=0)
    for a, b in zip(prepared, composed):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # dt_proj's weight is padded with zero columns up to the first B column of the x_proj output (8 here)
    assert prepared.dt_proj_w.shape == (2, e, 8)
    torch.testing.assert_close(prepared.dt_proj_w[..., :r], torch.stack([params[6], params[8]]).to(dtype),
                               rtol=0, atol=0)
    assert not prepared.dt_proj_w[..., r:].any() and not prepared.x_proj_w[:, r:8].any()
    keep = [i for i, t in enumerate(composed) if t.requires_grad]  # zeros stand in for a missing conv bias
    upstream = [torch.randn(composed[i].shape, generator=g).to(composed[i].dtype) for i in keep]
    live = [t for t in params if t is not None]
    got = torch.autograd.grad([prepared[i] for i in keep], live, upstream)
    want = torch.autograd.grad([composed[i] for i in keep], live, upstream)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gluon_softplus_polynomial_accuracy():
    # the coefficients the Gluon walk evaluates for ln(1 + e), e = exp(-|x|) in (0, 1], by Horner in fp32:
    # relative error within that of MUFU.LG2 (~2^-22), and softplus itself matches torch's to 3e-7
    gluon = pytest.importorskip("vim_backbone.ops.fused_bimamba_gluon")
    q_coef = [torch.tensor(c, dtype=torch.float32) for c in gluon.LOG1P_Q.value]
    e = torch.cat([torch.linspace(0, 1, 200001, dtype=torch.float64)[1:],
                   torch.logspace(-30, 0, 301, dtype=torch.float64)])
    x32 = e.float()
    q = x32 * q_coef[8] + q_coef[7]
    for c in reversed(q_coef[:7]):
        q = q * x32 + c
    approx = (q * x32).double()
    assert ((approx - torch.log1p(e)).abs() / torch.log1p(e)).max() < 2.5e-7
    x = torch.linspace(-30, 30, 60001, dtype=torch.float64)
    ex = torch.exp(-x.abs()).float()
    q = ex * q_coef[8] + q_coef[7]
    for c in reversed(q_coef[:7]):
        q = q * ex + c
    sp = torch.where(x > 20, x, x.clamp(min=0) + (q * ex).double())
    ref = torch.nn.functional.softplus(x)
    assert ((sp - ref).abs() / ref).max() < 3e-7


def _fake_gluon_module(run):
    """A stand-in for fused_bimamba_gluon whose walk kernel calls ``run(grid, *args, **kwargs)``."""
    import types

    class _Launcher:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: run(grid, *args, **kwargs)

    return types.SimpleNamespace(_scan_fwd_gluon_kernel=_Launcher())


def _as_triton_walk(grid, *args, NUM_WARPS, STAGE=None, SPLIT=None, POLY=None, **kwargs):
    from vim_backbone.ops import fused_bimamba_kernels as k
    k._scan_fwd_kernel[grid](*args, FAST=False, **kwargs)


def test_gluon_walk_failure_falls_back_to_triton_walk(monkeypatch):
    # automatic selection: a Gluon walk that fails the first time it runs a variant hands over to the Triton walk
    # with one warning and is not tried again; once a variant ran, its errors propagate; an explicit
    # VIM_FUSED_FORWARD=gluon never falls back
    import warnings

    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.delenv("VIM_FUSED_FORWARD", raising=False)
    monkeypatch.setattr(fb, "_gluon_failure", None)
    monkeypatch.setattr(fb, "_gluon_ran", set())
    args = {k: v.detach() for k, v in _make_args(torch.float32, 1, 8, 9, 4, 2).items()}

    def run():
        return bidirectional_scan_fused(**args, dt_rank=2, d_state=4, chunk=4, block_e=8)

    monkeypatch.setattr(fb, "forward_kind", lambda *a: "triton")
    want = run()
    monkeypatch.setattr(fb, "forward_kind", lambda *a: "triton" if fb._gluon_failure else "gluon")

    calls = []

    def broken(grid, *a, **kw):
        calls.append(grid)
        raise RuntimeError("PassManager::run failed")

    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: _fake_gluon_module(broken))
    monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
    with pytest.raises(RuntimeError, match="PassManager"):  # asked for by name: no fallback
        run()
    assert fb._gluon_failure is None
    monkeypatch.delenv("VIM_FUSED_FORWARD")
    with pytest.warns(UserWarning, match="Gluon forward walk"):
        got = run()
    torch.testing.assert_close(got, want)
    assert "PassManager" in fb._gluon_failure
    n = len(calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(run(), want)  # the Triton walk from now on, silently
    assert len(calls) == n

    # a variant that ran is trusted: a later error in it is not taken for a build failure
    monkeypatch.setattr(fb, "_gluon_failure", None)
    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: _fake_gluon_module(_as_triton_walk))
    torch.testing.assert_close(run(), want)
    assert len(fb._gluon_ran) == 1
    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: _fake_gluon_module(broken))
    with pytest.raises(RuntimeError, match="PassManager"):
        run()


def test_gluon_walk_backward_failure_falls_back_to_triton(monkeypatch):
    # the walk backward's automatic selection, as the forward's: a Gluon walk backward that fails the first time
    # it runs a variant hands over to the Triton one with one warning, and is not tried again; a variant that ran
    # is trusted; the launch passes the Triton kernels' arguments (checked by running them in its place)
    import types
    import warnings

    from vim_backbone.ops import fused_bimamba as fb
    from vim_backbone.ops import fused_bimamba_kernels as k
    monkeypatch.delenv("VIM_FUSED_BACKWARD_WALK", raising=False)
    monkeypatch.setattr(fb, "_gluon_bwd_failure", None)
    monkeypatch.setattr(fb, "_gluon_ran", set())
    monkeypatch.setattr(fb, "forward_kind", lambda *a: "triton")
    args = _make_args(torch.float32, 2, 40, 70, 4, 2)

    def grads():
        out = bidirectional_scan_fused(**args, dt_rank=2, d_state=4, chunk=8, bwd_segments=3)
        return torch.autograd.grad(out, list(args.values()), torch.ones_like(out))

    monkeypatch.setattr(fb, "backward_walk_kind", lambda *a: "triton")
    want = grads()
    monkeypatch.setattr(fb, "backward_walk_kind", lambda *a: "triton" if fb._gluon_bwd_failure else "gluon")
    calls = []

    def module(run):
        class _Launcher:
            def __init__(self, name):
                self.name = name

            def __getitem__(self, grid):
                return lambda *a, **kw: run(self.name, grid, *a, **kw)

        return types.SimpleNamespace(_scan_bwd_walk_gluon_kernel=_Launcher("walk"),
                                     _scan_bwd_seg_gluon_kernel=_Launcher("seg"))

    def broken(name, grid, *a, **kw):
        calls.append(name)
        raise RuntimeError("PassManager::run failed")

    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: module(broken))
    with pytest.warns(UserWarning, match="Gluon walk backward"):
        got = grads()
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert "PassManager" in fb._gluon_bwd_failure and fb._gluon_failure is None and calls == ["seg"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads()  # the Triton walk backward from now on, silently
    assert calls == ["seg"]

    def as_triton(name, grid, *a, N, CHUNK, SEGMENTS, NUM_WARPS, POLY, num_warps, PIECES, GROUP=None, CHAINS=None,
                  SPLIT=1):
        assert PIECES == 1 and SPLIT == 1  # the Triton kernels' summaries: one a segment; 32 channels a program
        calls.append(name)
        kernel = k._scan_bwd_walk_kernel if name == "walk" else k._scan_bwd_seg_kernel
        kernel[grid](*a, N=N, BLOCK_E=32 * NUM_WARPS, CHUNK=CHUNK, SEGMENTS=SEGMENTS, FAST=False, num_warps=num_warps)

    monkeypatch.setattr(fb, "_gluon_bwd_failure", None)
    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: module(as_triton))
    monkeypatch.setattr(fb, "GLUON_BWD_GROUP", 1)  # the Triton walk's scratch: a slot a token
    monkeypatch.setattr(fb, "GLUON_BWD_SUMMARY_PIECES", 1)
    for g, w in zip(grads(), want):  # 32 channels a program, the sums over channels in another order
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    assert calls == ["seg", "seg", "walk"] and len(fb._gluon_ran) == 1
    monkeypatch.setattr(fb, "load_gluon_kernels", lambda: module(broken))
    with pytest.raises(RuntimeError, match="PassManager"):  # a variant that ran: its errors are real ones
        grads()


def test_forward_kind_after_a_gluon_failure(monkeypatch):
    # where Gluon would be taken, a recorded failure turns automatic selection to the Triton walk; naming
    # Gluon still gets it
    from vim_backbone.ops import fused_bimamba as fb
    monkeypatch.delenv("VIM_FUSED_FORWARD", raising=False)
    monkeypatch.setattr(fb, "_interpreting", lambda: False)  # no kernel runs in this test
    monkeypatch.setattr(fb, "_gluon_importable", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(fb, "_gluon_failure", None)
    assert fb.forward_kind() == "gluon"
    monkeypatch.setattr(fb, "_gluon_failure", "RuntimeError: PassManager::run failed")
    assert fb.forward_kind() == "triton"
    monkeypatch.setenv("VIM_FUSED_FORWARD", "gluon")
    assert fb.forward_kind() == "gluon"
