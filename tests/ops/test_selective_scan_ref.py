import pytest
import torch
import torch.nn.functional as F

from tests.naive_vim import naive_scan
from vim_backbone.ops import BACKENDS, get_backend, resolve_backend
from vim_backbone.ops.selective_scan_ref import causal_conv1d_ref, choose_chunk_size, selective_scan_ref

TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def _inputs(dtype, b=2, e=6, n=4, l=37):
    g = torch.Generator().manual_seed(1)
    mk = lambda *s, scale=1.0: (torch.randn(*s, generator=g, dtype=dtype) * scale).requires_grad_()
    return dict(u=mk(b, e, l), delta=mk(b, e, l, scale=0.5), A=(-torch.rand(e, n, generator=g, dtype=dtype) * 3).requires_grad_(),
                B=mk(b, n, l), C=mk(b, n, l), D=mk(e), z=mk(b, e, l), delta_bias=mk(e, scale=0.3))


def _naive(u, delta, A, B, C, D, z, delta_bias):
    delta = F.softplus(delta + delta_bias[None, :, None])
    return naive_scan(u, delta, A, B, C, D) * F.silu(z)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk_size", [None, 1, 8, 16])
def test_scan_matches_per_timestep_loop(dtype, chunk_size):
    inp = _inputs(dtype)
    y = selective_scan_ref(**inp, delta_softplus=True, chunk_size=chunk_size)
    y_ref = _naive(**inp)
    grad = torch.randn_like(y)  # one upstream gradient shared by both
    g = torch.autograd.grad(y, list(inp.values()), grad)
    g_ref = torch.autograd.grad(y_ref, list(inp.values()), grad)
    err = (y - y_ref).abs().max().item()
    assert err < TOL[dtype], f"forward max err {err}"
    for name, a, b in zip(inp, g, g_ref):
        err = (a - b).abs().max().item()
        assert err < TOL[dtype] * 10, f"grad {name} max err {err}"


def test_scan_last_state_and_no_optional_inputs():
    inp = _inputs(torch.float64, l=20)
    y, h = selective_scan_ref(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], return_last_state=True, chunk_size=7)
    y_full = naive_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], torch.zeros(6, dtype=torch.float64))
    assert torch.allclose(y, y_full, atol=1e-10)
    assert h.shape == (2, 6, 4)


def test_scan_rejects_grouped_B():
    inp = _inputs(torch.float32)
    with pytest.raises(ValueError, match="input-dependent B and C"):
        selective_scan_ref(inp["u"], inp["delta"], inp["A"], inp["B"][:, None], inp["C"])


def test_scan_keeps_input_dtype():
    inp = {k: v.detach().to(torch.bfloat16) if k in ("u", "delta", "z") else v.detach() for k, v in _inputs(torch.float32).items()}
    assert selective_scan_ref(**inp, delta_softplus=True).dtype == torch.bfloat16


def test_chunk_size_bounded_by_budget():
    assert choose_chunk_size(1, 384, 16, 197) == 197
    assert choose_chunk_size(64, 1536, 16, 4097) == 16
    t = choose_chunk_size(8, 768, 16, 4097)
    assert 8 * 768 * t * 16 <= 1 << 24


def test_causal_conv_is_causal_and_matches_naive():
    x = torch.randn(2, 5, 11, dtype=torch.float64)
    w = torch.randn(5, 4, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64)
    out = causal_conv1d_ref(x, w, b, "silu")
    xp = F.pad(x, (3, 0))
    naive = F.silu(sum(w[None, :, j, None] * xp[:, :, j:j + 11] for j in range(4)) + b[None, :, None])
    assert torch.allclose(out, naive, atol=1e-12)
    x2 = x.clone()
    x2[..., 6:] += 1.0  # changing the future must not change the past
    assert torch.equal(causal_conv1d_ref(x2, w, b, "silu")[..., :6], out[..., :6])
    with pytest.raises(ValueError, match="activation 'relu' not in"):
        causal_conv1d_ref(x, w, b, "relu")


def test_backend_choice(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("VIM_SCAN_BACKEND", raising=False)
    assert resolve_backend(None, cpu) == "reference"
    assert get_backend("reference", cpu).selective_scan is selective_scan_ref
    monkeypatch.setenv("VIM_SCAN_BACKEND", "reference")
    assert resolve_backend(None, cpu) == "reference"
    with pytest.raises(ValueError, match="not in"):
        resolve_backend("cuda_magic", cpu)
    monkeypatch.setenv("VIM_SCAN_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="VIM_SCAN_BACKEND"):
        resolve_backend(None, cpu)
    assert set(BACKENDS) >= {"reference", "mamba_ssm"}


def test_forcing_unavailable_mamba_ssm_names_install_command():
    try:
        import mamba_ssm.ops.selective_scan_interface  # noqa: F401
        pytest.skip("mamba_ssm is importable here")
    except Exception:
        pass
    with pytest.raises(ImportError, match="install_cuda_ops.sh"):
        resolve_backend("mamba_ssm", torch.device("cpu"))


def test_forcing_mamba_ssm_off_cuda_is_refused(monkeypatch):
    # even where mamba_ssm imports (a GPU box benchmarking on --device cpu), its kernels need CUDA tensors
    import vim_backbone.ops as ops
    monkeypatch.setattr(ops, "_load", lambda name: None)
    with pytest.raises(ValueError, match="CUDA kernels only"):
        resolve_backend("mamba_ssm", torch.device("cpu"))
    assert resolve_backend("mamba_ssm", torch.device("cuda")) == "mamba_ssm"


def test_automatic_fallback_on_cuda_warns_once(monkeypatch):
    import warnings

    import vim_backbone.ops as ops
    monkeypatch.delenv("VIM_SCAN_BACKEND", raising=False)
    monkeypatch.setattr(ops, "_available", lambda name: False)
    monkeypatch.setattr(ops, "_warned_fallback", False)
    cuda = torch.device("cuda")  # a device object only: no GPU needed to check the choice
    with pytest.warns(UserWarning, match="install_cuda_ops.sh"):
        assert resolve_backend(None, cuda) == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backend(None, cuda) == "reference"  # announced once, not on every call


@pytest.mark.parametrize("have_mamba", [True, False])
def test_automatic_choice_on_cuda(monkeypatch, have_mamba):
    import vim_backbone.ops as ops
    import vim_backbone.ops.fused_bimamba as fb
    monkeypatch.delenv("VIM_SCAN_BACKEND", raising=False)
    monkeypatch.setattr(ops, "_available", lambda name: name == "fused" or (have_mamba and name == "mamba_ssm"))
    monkeypatch.setattr(fb, "fused_available", lambda device: True)
    cuda = torch.device("cuda")
    stock = "mamba_ssm" if have_mamba else "fused"
    # the same in grad mode (training) and without
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            assert resolve_backend(None, cuda, batch=64) == "fused"
            assert resolve_backend(None, cuda, batch=ops.FUSED_MIN_BATCH) == "fused"
            assert resolve_backend(None, cuda, batch=ops.FUSED_MIN_BATCH - 1) == stock  # not measured faster
            assert resolve_backend(None, cuda) == stock  # unknown batch counts as small
    assert resolve_backend(None, torch.device("cpu"), batch=64) == "reference"


def test_mamba_ssm_backend_without_causal_conv1d_warns_and_uses_reference_conv(monkeypatch):
    import sys
    import types

    from vim_backbone.ops.mamba_ssm_backend import load_mamba_ssm
    calls = []
    fake = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    fake.selective_scan_fn = lambda *args: calls.append(len(args)) or args[0]
    for name in ("mamba_ssm", "mamba_ssm.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops.selective_scan_interface", fake)
    monkeypatch.setitem(sys.modules, "causal_conv1d", None)  # import raises ImportError
    with pytest.warns(UserWarning, match="causal-conv1d not importable"):
        scan, conv = load_mamba_ssm()
    x, w, b = torch.randn(1, 3, 8), torch.randn(3, 4), torch.randn(3)
    assert torch.equal(conv(x, w, b, "silu"), causal_conv1d_ref(x, w, b, "silu"))
    u = torch.randn(1, 3, 8)
    assert scan(u, u, torch.randn(3, 2), torch.randn(1, 2, 8), torch.randn(1, 2, 8)) is not None and calls == [10]
