import math

import pytest
import torch

import vim_backbone as vim
from tests.naive_vim import naive_vim_logits
from vim_backbone.models import take_indices

TINY = dict(embed_dim=32, depth=4, d_state=4, img_size=64, num_classes=10, scan_backend="reference")


def tiny(**kw):
    return vim.VisionMamba(**{**TINY, **kw})


@pytest.mark.parametrize("name,millions", [
    ("vim_tiny_patch16_224", 7.1), ("vim_tiny_patch16_stride8_224", 7.3), ("vim_small_patch16_224", 25.8),
    ("vim_small_patch16_stride8_224", 26.0), ("vim_base_patch16_224", 97.6)])
def test_variant_parameter_counts(name, millions):
    m = vim.create_model(name)
    n = sum(p.numel() for p in m.parameters()) / 1e6
    assert abs(n - millions) < 0.1, f"{name}: {n:.3f}M params"


def test_variant_shapes():
    m = vim.create_model("vim_tiny_patch16_stride8_224")
    assert m.pos_embed.shape == (1, 730, 192) and m.patch_embed.grid_size == (27, 27)
    assert m.layers[0].mixer.dt_rank == 12 and m.layers[0].mixer.d_inner == 384
    s = vim.create_model("vim_small_patch16_224")
    assert s.pos_embed.shape == (1, 197, 384) and s.layers[0].mixer.x_proj.weight.shape == (24 + 32, 768)
    assert vim.list_models() == sorted(vim.list_models()) and len(vim.list_models()) == 5


def test_unknown_model_lists_known():
    with pytest.raises(ValueError, match="known models: vim_base_patch16_224, vim_small"):
        vim.create_model("vim_huge")


def test_matches_naive_spec_implementation():
    m = tiny().double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # move away from the symmetric init
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        out = m(x)
    ref = naive_vim_logits(m.state_dict(), x)
    assert (out - ref).abs().max() < 1e-9


@pytest.mark.parametrize("hw", [(64, 64), (48, 80), (100, 37), (16, 16), (17, 31)])
def test_any_input_size(hw):
    m = tiny().eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        assert m(x).shape == (1, 10)
        feats = m.forward_intermediates(x, indices=[1, -1], intermediates_only=True)
    gh, gw = (hw[0] - 16) // 16 + 1, (hw[1] - 16) // 16 + 1
    assert [tuple(f.shape) for f in feats] == [(1, 32, gh, gw)] * 2


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_empty_batch(backend):
    # a batch of 0 images gives 0 outputs, in inference and training (the fused kernels are not launched)
    from vim_backbone.ops.fused_bimamba import fused_available
    if backend == "fused" and not fused_available(torch.device("cuda" if torch.cuda.is_available() else "cpu")):
        pytest.skip("fused scan needs Triton with CUDA, or TRITON_INTERPRET=1")
    device = "cuda" if backend == "fused" and torch.cuda.is_available() else "cpu"
    m = tiny(scan_backend=backend).to(device).eval()
    x = torch.randn(0, 3, 64, 48, device=device)
    with torch.no_grad():
        assert m(x).shape == (0, 10)
        feats = m.forward_intermediates(x, indices=[1], intermediates_only=True)
    assert [tuple(f.shape) for f in feats] == [(0, 32, 4, 3)]
    m.train()
    out = m(x.requires_grad_(True))
    out.sum().backward()
    assert out.shape == (0, 10) and m.patch_embed.proj.weight.grad is not None


@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_scan_recompute_trains_like_the_default(amp):
    # scan_recompute (on by default) reaches every mixer; with the fused backend the block keeps less for the backward, the outputs
    # are the default's and so are the gradients (up to the order of sums); with the reference backend it changes
    # nothing
    import contextlib
    from vim_backbone.ops.fused_bimamba import fused_available
    device = "cuda" if torch.cuda.is_available() else "cpu"
    m = tiny(scan_recompute=False)
    assert all(layer.mixer.recompute for layer in tiny().layers) and not any(l.mixer.recompute for l in m.layers)
    if not fused_available(torch.device(device)):
        pytest.skip("fused scan needs Triton with CUDA, or TRITON_INTERPRET=1")
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 48, device=device)
    runs = []
    for recompute in (False, True):
        torch.manual_seed(0)
        m = tiny(scan_backend="fused", scan_recompute=recompute, depth=2).to(device).train()
        kept = {}

        def pack(t):
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        autocast = torch.autocast(device, dtype=amp) if amp else contextlib.nullcontext()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
            out = m(x)
        out.float().square().sum().backward()
        runs.append((sum(kept.values()), out.detach(), {n: p.grad for n, p in m.named_parameters()}))
    (kept, out, grads), (kept_re, out_re, grads_re) = runs
    assert kept_re < kept and torch.equal(out_re, out)
    for name, g in grads.items():
        if amp is None:
            torch.testing.assert_close(grads_re[name], g, rtol=1e-5, atol=1e-6, msg=name)
        else:  # the bf16 GEMMs of in_proj's backward, in the node or in autograd's linear
            err = ((grads_re[name] - g).abs().max() / g.abs().max().clamp(min=1e-3)).item()
            assert err < 2e-2, (name, err)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_scan_recompute_lowers_the_training_peak_gpu():
    # the allocator's peak of a bf16 training step of Vim-Ti at 512^2, batch 4: the activations kept for the
    # backward are 39% of scan_recompute=False's (tools/activation_memory.py); weights and the backward's own buffers add to
    # both peaks alike
    peaks = []
    for recompute in (False, True):
        torch.manual_seed(0)
        m = vim.create_model("vim_tiny_patch16_224", num_classes=0, img_size=512, scan_backend="fused",
                             scan_recompute=recompute).cuda().train()
        x = torch.randn(4, 3, 512, 512, device="cuda")
        for step in range(2):  # the second step: kernels compiled, allocator warm
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = m.forward_features(x)
            out.float().mean().backward()
            m.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated())
        del m, x, out
        torch.cuda.empty_cache()
    assert peaks[1] < 0.7 * peaks[0], peaks


def test_stride8_grid():
    m = tiny(stride=8).eval()
    assert m.pos_embed.shape == (1, 50, 32)
    with torch.no_grad():
        f = m.forward_intermediates(torch.randn(1, 3, 64, 96), indices=1, intermediates_only=True)[0]
    assert f.shape == (1, 32, 7, 11)


def test_pos_embed_cache_reused_in_eval_and_not_in_training():
    m = tiny().eval()
    with torch.no_grad():
        m(torch.randn(1, 3, 48, 80))
        m(torch.randn(1, 3, 48, 80))
    assert len(m._pos_cache) == 1
    m.train()
    y = m(torch.randn(1, 3, 48, 80)).sum()
    y.backward()
    assert m.pos_embed.grad is not None and m.pos_embed.grad.abs().sum() > 0


def test_intermediates_last_normed_equals_forward_features_and_drops_cls_from_middle():
    m = tiny().eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        final, feats = m.forward_intermediates(x, indices=[-1], norm=True, output_fmt="NLC", return_cls=True)
        ff = m.forward_features(x)
    tokens, cls = feats[0]
    mid = (ff.shape[1] - 1) // 2
    assert torch.allclose(final, ff)
    assert torch.allclose(cls, ff[:, mid]) and torch.allclose(tokens, torch.cat([ff[:, :mid], ff[:, mid + 1:]], 1))
    with pytest.raises(ValueError, match="output_fmt 'NHWC' not in"):
        m.forward_intermediates(x, output_fmt="NHWC")
    with pytest.raises(ValueError, match="out of range for depth 4"):
        m.forward_intermediates(x, indices=[4])


def test_no_class_token_model():
    m = tiny(class_token=False, num_classes=0).eval()
    assert m.cls_token is None and m.pos_embed.shape == (1, 16, 32)
    with torch.no_grad():
        assert m(torch.randn(1, 3, 64, 64)).shape == (1, 32)
    with pytest.raises(ValueError, match="no class token"):
        m.forward_intermediates(torch.randn(1, 3, 64, 64), return_cls=True)


def test_take_indices():
    assert take_indices(24, None) == list(range(24))
    assert take_indices(24, 4) == [20, 21, 22, 23]
    assert take_indices(24, [5, 11, -7, -1]) == [5, 11, 17, 23]


def test_gradient_checkpointing_same_gradients():
    m = tiny(drop_path_rate=0.0)
    x = torch.randn(2, 3, 64, 64)
    m(x).sum().backward()
    g_ref = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m.with_cp = True
    m(x).sum().backward()
    for n, p in m.named_parameters():
        assert torch.allclose(p.grad, g_ref[n], atol=1e-6), n


def test_drop_path_schedule():
    m = tiny(depth=5, drop_path_rate=0.2)
    rates = [getattr(l.drop_path, "p", 0.0) for l in m.layers]
    expected = [0.0] + torch.linspace(0, 0.2, 5).tolist()[:4]
    assert rates == pytest.approx(expected)
    assert m.drop_path.p == pytest.approx(0.2)


def test_init_as_released():
    m = vim.create_model("vim_tiny_patch16_224")
    w = m.layers[0].mixer.out_proj.weight
    bound = math.sqrt(6 / ((1 + 5) * w.shape[1])) / math.sqrt(24)  # kaiming_uniform(a=sqrt5) / sqrt(depth)
    assert w.abs().max() <= bound + 1e-7 and w.abs().max() > 0.8 * bound
    assert 0.015 < m.pos_embed.std() < 0.025 and torch.all(m.head.bias == 0)
    assert torch.all(m.layers[3].mixer.dt_proj.bias != 0)


def test_no_weight_decay_and_layer_depth():
    m = tiny()
    nwd = m.no_weight_decay()
    assert {"pos_embed", "cls_token", "layers.0.mixer.A_log", "layers.3.mixer.A_b_log",
            "layers.2.mixer.D", "layers.2.mixer.D_b"} <= nwd
    assert not any("in_proj" in n or "dt_proj" in n for n in nwd)
    assert m.get_layer_depth("backbone.pos_embed", "backbone.") == (0, 6)
    assert m.get_layer_depth("backbone.patch_embed.proj.weight", "backbone.") == (0, 6)
    assert m.get_layer_depth("backbone.layers.2.mixer.A_log", "backbone.") == (3, 6)
    assert m.get_layer_depth("backbone.norm_f.weight", "backbone.") == (5, 6)
    assert m.get_layer_depth("neck.conv.weight", "backbone.") == (5, 6)


@pytest.mark.parametrize("shape,match", [
    ((1, 1, 64, 64), "expected 3 input channels, got 1"),
    ((1, 3, 8, 64), "smaller than one patch"),
    ((3, 64, 64), "3-D tensor"),
])
def test_bad_input_errors(shape, match):
    with pytest.raises(ValueError, match=match):
        tiny()(torch.randn(*shape))
