"""Triton residual add + RMSNorm vs the PyTorch expression (interpreter on CPU, compiled on CUDA)."""
import pytest
import torch

from vim_backbone.layers.norm import RMSNorm, upcast
from vim_backbone.ops.fused_norm import add_rmsnorm, rmsnorm_again

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _torch_add_norm(x, residual, weight, eps):
    residual = upcast(x) if residual is None else residual + upcast(x)
    out = residual * torch.rsqrt(residual.pow(2).mean(-1, keepdim=True) + eps) * weight.float()
    return out.to(x.dtype), residual


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_residual", [True, False])
@pytest.mark.parametrize("tokens, res_out_used", [(7, True), (37, True), (37, False)])
def test_add_rmsnorm_matches_torch(dtype, with_residual, tokens, res_out_used):
    # 74 rows: several programs, each adding its rows' share of the weight gradient (16 rows a program forward, 32
    # backward: the last program's rows partial); the residual output unused (no gradient reaches it)
    g = torch.Generator().manual_seed(0)
    dim = 24  # not a power of two: masked columns
    x = torch.randn(2, tokens, dim, generator=g).to(DEVICE, dtype).requires_grad_()
    res = (torch.randn(2, tokens, dim, generator=g) * 3).to(DEVICE).requires_grad_() if with_residual else None
    w = (1 + 0.1 * torch.randn(dim, generator=g)).to(DEVICE).requires_grad_()
    out, res_out = add_rmsnorm(x, res, w, 1e-5)
    ref, ref_res = _torch_add_norm(x, res, w, 1e-5)
    assert out.dtype == dtype and res_out.dtype == torch.float32 and out.shape == x.shape
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(res_out, ref_res, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.float(), ref.float(), rtol=tol, atol=tol)
    go = torch.randn(out.shape, generator=g).to(DEVICE, dtype)
    gr = torch.randn(out.shape, generator=g).to(DEVICE)
    inputs = [t for t in (x, res, w) if t is not None]
    loss = (out.float() * go.float()).sum() + ((res_out * gr).sum() if res_out_used else 0)
    ref_loss = (ref.float() * go.float()).sum() + ((ref_res * gr).sum() if res_out_used else 0)
    grads = torch.autograd.grad(loss, inputs)
    ref_grads = torch.autograd.grad(ref_loss, inputs)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a.float(), b.float(), rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA dispatch")
def test_rmsnorm_module_takes_fused_path_on_cuda(monkeypatch):
    norm = RMSNorm(32).cuda()
    x = torch.randn(4, 32, device="cuda", dtype=torch.bfloat16)
    res = torch.randn(4, 32, device="cuda")
    fused = norm.add_norm(x, res)
    monkeypatch.setenv("VIM_FUSED_NORM", "0")
    plain = norm.add_norm(x, res)
    torch.testing.assert_close(fused[1], plain[1])
    torch.testing.assert_close(fused[0].float(), plain[0].float(), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_residual", [True, False])
def test_rmsnorm_again_gives_the_same_bits(dtype, with_residual):
    # the normalised output made again from the fp32 residual the kernel returned, without autograd: equal to the
    # bit (what scan_recompute's backward relies on to keep the residual only)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 37, 24, generator=g).to(DEVICE, dtype)
    res = (torch.randn(2, 37, 24, generator=g) * 3).to(DEVICE) if with_residual else None
    w = (1 + 0.1 * torch.randn(24, generator=g)).to(DEVICE).requires_grad_()
    out, res_out = add_rmsnorm(x, res, w, 1e-5)
    again = rmsnorm_again(res_out, w, 1e-5, dtype)
    assert again.dtype == dtype and not again.requires_grad and torch.equal(again, out)


@pytest.mark.parametrize("kernel", [True, False])
def test_norm_again_takes_the_path_add_norm_took(kernel, monkeypatch):
    from vim_backbone.layers import norm as norm_module
    monkeypatch.setattr(norm_module, "_fused_add_norm_enabled", lambda x: kernel)
    norm = RMSNorm(24).to(DEVICE)
    with torch.no_grad():
        norm.weight.add_(0.1 * torch.randn(24, device=DEVICE))
    x = torch.randn(2, 9, 24, device=DEVICE, dtype=torch.bfloat16)
    res = torch.randn(2, 9, 24, device=DEVICE)
    assert norm.add_norm_kernel(x, res) == kernel
    out, res_out = norm.add_norm(x, res)
    assert torch.equal(norm.norm_again(res_out, out.dtype, kernel), out)
