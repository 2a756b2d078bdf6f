"""The GEMM patchify (non-overlapping patches, the CUDA default) against the conv it replaces."""
import pytest
import torch

from vim_backbone.layers.patch_embed import PatchEmbed


@pytest.mark.parametrize("hw", [(32, 48), (37, 50)])  # whole patches; a remainder the conv drops
def test_gemm_patchify_matches_conv(hw):
    torch.manual_seed(0)
    conv = PatchEmbed(img_size=32, patch_size=8, stride=8, in_chans=3, embed_dim=16, gemm=False).double()
    gemm = PatchEmbed(img_size=32, patch_size=8, stride=8, in_chans=3, embed_dim=16, gemm=True).double()
    gemm.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, *hw, dtype=torch.float64, requires_grad=True)
    (ref, grid_ref), (out, grid) = conv(x), gemm(x)
    assert grid == grid_ref == (hw[0] // 8, hw[1] // 8)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [x, *conv.parameters()], g)
    grads = torch.autograd.grad(out, [x, *gemm.parameters()], g)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_gemm_patchify_choice():
    overlapping = PatchEmbed(img_size=32, patch_size=8, stride=4, embed_dim=16, gemm=True)
    with pytest.raises(ValueError, match="stride = patch size"):
        overlapping(torch.randn(1, 3, 32, 32))
    auto = PatchEmbed(img_size=32, patch_size=8, stride=8, embed_dim=16)
    assert auto.gemm is None  # the conv on CPU, the GEMM on CUDA
    out, grid = auto(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 16, 16) and grid == (4, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gemm_patchify_matches_conv_cuda_autocast():
    torch.manual_seed(0)
    conv = PatchEmbed(img_size=224, gemm=False).cuda()
    gemm = PatchEmbed(img_size=224).cuda()  # the default on CUDA
    gemm.load_state_dict(conv.state_dict())
    x = torch.randn(4, 3, 224, 224, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        (ref, _), (out, _) = conv(x), gemm(x)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), atol=3e-2, rtol=3e-2)


def test_gemm_patchify_under_cpu_autocast():
    # the patches are laid out in the autocast dtype, as the GEMM would cast them
    torch.manual_seed(0)
    conv = PatchEmbed(img_size=32, patch_size=8, stride=8, embed_dim=16, gemm=False)
    gemm = PatchEmbed(img_size=32, patch_size=8, stride=8, embed_dim=16, gemm=True)
    gemm.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (ref, _), (out, _) = conv(x), gemm(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), atol=3e-2, rtol=3e-2)
