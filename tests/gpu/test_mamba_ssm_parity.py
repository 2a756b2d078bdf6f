"""The stock ``mamba_ssm`` CUDA kernels against the pure-PyTorch reference.

* selective scan: output and the gradient of every input and parameter (u, delta, A, B, C, D, z,
  delta_bias) with one shared upstream gradient, fp32 / fp16 / bf16, L in {197, 730, 1025, 4097, 6085}
  (Vim at 224, 224 stride 8, 512, 1024, 1248), batch 2. The truth is the reference run in fp64 on the
  very same (already rounded) inputs, so the error measured is the kernel's alone;
* whole model: Vim-Ti and Vim-S with ``scan_backend='mamba_ssm'`` vs ``'reference'`` on the same
  weights, logits and every parameter gradient, fp32;
* AMP: 200 training steps of a tiny Vim classifier under bf16 autocast, and fp16 autocast with a
  GradScaler: no NaN/Inf, and it learns.

Errors are ``max |kernel - truth| / max |truth|`` per tensor. Skipped without CUDA or mamba_ssm
(`bash tools/install_cuda_ops.sh` builds it).
"""
import math

import pytest
import torch
import torch.nn.functional as F

from vim_backbone import create_model
from vim_backbone.models import VisionMamba
from vim_backbone.ops import selective_scan_ref


def _mamba_ssm_scan():
    if not torch.cuda.is_available():
        return None
    try:
        from vim_backbone.ops import get_backend
        return get_backend("mamba_ssm", torch.device("cuda")).selective_scan
    except ImportError:
        return None


SCAN = _mamba_ssm_scan()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(torch.cuda.is_available() and SCAN is None,
                       reason="mamba_ssm not importable: bash tools/install_cuda_ops.sh"),
]
DEVICE = torch.device("cuda")

# max |err| / max |truth|: (output, gradients). Low-precision rows are dominated by rounding the
# kernel's outputs (and, for gradients, its low-precision intermediates) to that dtype.
SCAN_TOL = {
    torch.float32: (2e-4, 1e-3),
    torch.float16: (3e-3, 1e-2),
    torch.bfloat16: (2e-2, 5e-2),
}
LENGTHS = (197, 730, 1025, 4097, 6085)
SCAN_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
# whole model, fp32: (logits, parameter gradients)
MODEL_TOL = (1e-3, 5e-3)


def rel_err(actual: torch.Tensor, truth: torch.Tensor) -> float:
    truth = truth.double()
    return ((actual.double() - truth).abs().max() / truth.abs().max().clamp_min(1e-30)).item()


def scan_inputs(batch: int, channels: int, state: int, length: int, dtype: torch.dtype, seed: int = 0) -> dict:
    """Vim-like values: A = -(1..N), dt from the released init through softplus, D = 1."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    dt = torch.exp(torch.rand(channels, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    act = lambda *s: torch.randn(*s, generator=g).to(DEVICE, dtype)  # noqa: E731
    return dict(
        u=act(batch, channels, length),
        delta=(torch.randn(batch, channels, length, generator=g) * 0.5).to(DEVICE, dtype),
        A=-torch.arange(1, state + 1, dtype=torch.float32).repeat(channels, 1).to(DEVICE)
        * torch.exp(torch.randn(channels, state, generator=g) * 0.1).to(DEVICE),
        B=act(batch, state, length),
        C=act(batch, state, length),
        D=(1 + 0.1 * torch.randn(channels, generator=g)).to(DEVICE),
        z=act(batch, channels, length),
        delta_bias=(dt + torch.log(-torch.expm1(-dt))).to(DEVICE),  # inverse softplus
    )


def run_scan(fn, inputs: dict, grad_out: torch.Tensor):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"], leaves["D"], z=leaves["z"],
             delta_bias=leaves["delta_bias"], delta_softplus=True)
    grads = torch.autograd.grad(out, [leaves[k] for k in SCAN_NAMES], grad_out.to(out.dtype))
    return out.detach(), dict(zip(SCAN_NAMES, grads))


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"])
def test_selective_scan_matches_reference(dtype, length):
    batch, channels, state = 2, 96, 16
    inputs = scan_inputs(batch, channels, state, length, dtype)
    grad_out = torch.randn(batch, channels, length, generator=torch.Generator().manual_seed(1)).to(DEVICE)

    out, grads = run_scan(SCAN, inputs, grad_out.to(dtype))
    truth_out, truth_grads = run_scan(selective_scan_ref, {k: v.double() for k, v in inputs.items()},
                                      grad_out.to(dtype).double())

    assert out.dtype == dtype
    tol_out, tol_grad = SCAN_TOL[dtype]
    err = rel_err(out, truth_out)
    assert err <= tol_out, f"output: max rel err {err:.2e} > {tol_out:.0e} ({dtype}, L={length})"
    errs = {k: rel_err(grads[k], truth_grads[k]) for k in SCAN_NAMES}
    assert all(torch.isfinite(g).all() for g in grads.values()), "non-finite gradient"
    worst = max(errs, key=errs.get)
    assert errs[worst] <= tol_grad, (f"grad {worst}: max rel err {errs[worst]:.2e} > {tol_grad:.0e} "
                                     f"({dtype}, L={length}); all: " +
                                     ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))


def test_selective_scan_without_optional_inputs():
    """D, z and delta_bias are optional in both twins; the kernel must agree without them too."""
    inputs = scan_inputs(2, 64, 16, 257, torch.float32)
    delta = F.softplus(inputs["delta"] + inputs["delta_bias"][:, None])  # positive steps, no bias/softplus inside
    ref = selective_scan_ref(inputs["u"].double(), delta.double(), inputs["A"].double(),
                             inputs["B"].double(), inputs["C"].double())
    out = SCAN(inputs["u"], delta, inputs["A"], inputs["B"], inputs["C"])
    err = rel_err(out, ref)
    assert err <= SCAN_TOL[torch.float32][0], f"max rel err {err:.2e}"


# -------------------------------------------------------------------------------------------- whole model
@pytest.mark.parametrize("name", ["vim_tiny_patch16_224", "vim_small_patch16_224"])
def test_model_mamba_ssm_matches_reference(name):
    torch.manual_seed(0)
    fast = create_model(name, scan_backend="mamba_ssm").to(DEVICE)
    ref = create_model(name, scan_backend="reference").to(DEVICE)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, 3, 224, 224, device=DEVICE)
    grad_out = torch.randn(2, 1000, device=DEVICE)

    logits_fast = fast(x)
    logits_ref = ref(x)
    (logits_fast * grad_out).sum().backward()
    (logits_ref * grad_out).sum().backward()

    err = rel_err(logits_fast, logits_ref)
    assert err <= MODEL_TOL[0], f"{name} logits: max rel err {err:.2e} > {MODEL_TOL[0]:.0e}"
    ref_params = dict(ref.named_parameters())
    errs = {}
    for pname, p in fast.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{pname}: missing or non-finite grad"
        errs[pname] = rel_err(p.grad, ref_params[pname].grad)
    worst = sorted(errs, key=errs.get, reverse=True)[:5]
    assert errs[worst[0]] <= MODEL_TOL[1], (f"{name} grads: worst " +
                                            ", ".join(f"{k} {errs[k]:.1e}" for k in worst) +
                                            f" > {MODEL_TOL[1]:.0e}")


def test_backend_switch_on_same_module():
    """Flipping the scan backend of one module in place gives the same output (timm test_attn2d style)."""
    torch.manual_seed(0)
    model = VisionMamba(img_size=64, embed_dim=64, depth=2, num_classes=8, scan_backend="mamba_ssm").to(DEVICE).eval()
    x = torch.randn(2, 3, 64, 64, device=DEVICE)
    with torch.no_grad():
        fast = model(x)
        for layer in model.layers:
            layer.mixer.backend = "reference"
        ref = model(x)
    err = rel_err(fast, ref)
    assert err <= MODEL_TOL[0], f"max rel err {err:.2e}"


# ----------------------------------------------------------------------------------------------------- AMP
def _toy_batches(num_classes: int, size: int, batch: int, steps: int, seed: int = 0):
    """Noisy images of one fixed random template per class: learnable in a few dozen steps."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    templates = torch.randn(num_classes, 3, size, size, generator=g)
    for _ in range(steps):
        y = torch.randint(0, num_classes, (batch,), generator=g)
        x = templates[y] + torch.randn(batch, 3, size, size, generator=g)
        yield x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)


@pytest.mark.parametrize("amp_dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16+GradScaler"])
def test_amp_training_200_steps_finite(amp_dtype):
    torch.manual_seed(0)
    num_classes, steps = 4, 200
    model = VisionMamba(img_size=32, patch_size=8, stride=8, embed_dim=96, depth=4, num_classes=num_classes,
                        drop_path_rate=0.1, scan_backend="mamba_ssm").to(DEVICE).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    losses, skipped = [], 0
    for step, (x, y) in enumerate(_toy_batches(num_classes, 32, 32, steps)):
        with torch.autocast("cuda", dtype=amp_dtype):
            loss = F.cross_entropy(model(x), y)
        assert torch.isfinite(loss), f"step {step}: loss {loss.item()} ({amp_dtype})"
        opt.zero_grad(set_to_none=True)
        scale_before = scaler.get_scale() if scaler.is_enabled() else None
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        if amp_dtype == torch.bfloat16:
            bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
            assert not bad, f"step {step}: non-finite grads in {bad[:5]}"
        scaler.step(opt)
        scaler.update()
        if scale_before is not None and scaler.get_scale() < scale_before:
            skipped += 1  # GradScaler found inf/nan grads and skipped this step
        losses.append(loss.item())
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    assert not bad, f"non-finite parameters after {steps} steps: {bad[:5]}"
    assert skipped <= steps // 10, f"GradScaler skipped {skipped}/{steps} steps"
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, f"did not learn: mean loss {first:.3f} (first 20) -> {last:.3f} (last 20)"
