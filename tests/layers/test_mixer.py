import torch

from vim_backbone.layers import BiMambaMixer, RMSNorm


def test_backward_direction_is_forward_direction_on_flipped_sequence():
    torch.manual_seed(0)
    mixer = BiMambaMixer(16, d_state=4, backend="reference").double()
    # give each direction different parameters so a mix-up would show
    with torch.no_grad():
        for p in mixer.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    h = torch.randn(2, 9, 16, dtype=torch.float64)
    from vim_backbone.ops import get_backend
    backend = get_backend("reference", h.device)
    xz = torch.nn.functional.linear(h, mixer.in_proj.weight).transpose(1, 2)
    out_b = mixer._direction(backend, xz.flip(-1), "_b", mixer.A_b_log, mixer.D_b)

    # a second mixer whose *forward* parameters are the first one's backward parameters
    twin = BiMambaMixer(16, d_state=4, backend="reference").double()
    sd = {k.replace("_b.", ".").replace("A_b_log", "A_log").replace("D_b", "D"): v
          for k, v in mixer.state_dict().items() if "_b" in k}
    twin.load_state_dict(sd, strict=False)
    twin.in_proj.weight.data.copy_(mixer.in_proj.weight)
    fwd_on_flipped = twin._direction(backend, xz.flip(-1), "", twin.A_log, twin.D)
    assert torch.allclose(out_b, fwd_on_flipped, atol=1e-12)

    # and the full mixer is the mean of both, through out_proj
    out_f = mixer._direction(backend, xz, "", mixer.A_log, mixer.D)
    full = torch.nn.functional.linear(((out_f + out_b.flip(-1)) / 2).transpose(1, 2), mixer.out_proj.weight)
    assert torch.allclose(mixer(h), full, atol=1e-12)
    assert (out_f - out_b.flip(-1)).abs().max() > 1e-3  # the directions really differ


def test_release_parameter_names_and_shapes():
    m = BiMambaMixer(192)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (768, 192), "out_proj.weight": (192, 384),
        "conv1d.weight": (384, 1, 4), "conv1d.bias": (384,), "x_proj.weight": (12 + 32, 384),
        "dt_proj.weight": (384, 12), "dt_proj.bias": (384,),
        "conv1d_b.weight": (384, 1, 4), "conv1d_b.bias": (384,), "x_proj_b.weight": (44, 384),
        "dt_proj_b.weight": (384, 12), "dt_proj_b.bias": (384,),
        "A_log": (384, 16), "A_b_log": (384, 16), "D": (384,), "D_b": (384,),
    }


def test_ssm_init_as_released():
    m = BiMambaMixer(64)
    assert torch.allclose(m.A_log.exp(), torch.arange(1, 17.0).expand(128, 16))
    assert torch.all(m.D == 1) and torch.all(m.D_b == 1)
    dt = torch.nn.functional.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert m.dt_proj.weight.abs().max() <= 4 ** -0.5


def test_rmsnorm_add_norm_keeps_fp32_residual():
    n = RMSNorm(8)
    x = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    out, res = n.add_norm(x, None)
    assert res.dtype == torch.float32 and out.dtype == torch.bfloat16
    out2, res2 = n.add_norm(x, res)
    assert torch.equal(res2, res + x.float())


def test_projection_weights_not_kept_without_grad():
    # under autocast without gradients the in / out projections run on copies made for the call: no second
    # copy of their weights stays in the module (the kept state is the fused op's prepared weights alone)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # fused runs on CPU in Triton's interpreter only
    for backend in ("reference", "fused"):
        mixer = BiMambaMixer(d_model=16, d_state=4, backend=backend).to(device)
        x = torch.randn(2, 9, 16, device=device)
        with torch.autocast(device, dtype=torch.bfloat16):
            ref = mixer(x)  # gradients on
            with torch.no_grad():
                out = mixer(x)
        assert set(mixer.__dict__.get("_kept", {})) <= {"fused"}, backend
        assert out.dtype == ref.dtype == torch.bfloat16
        torch.testing.assert_close(out, ref.detach(), rtol=2e-2, atol=2e-2)
