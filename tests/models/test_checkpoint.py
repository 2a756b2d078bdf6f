import argparse

import pytest
import torch

import vim_backbone as vim
from vim_backbone.layers import split_pos_embed


def _official_file(tmp_path, model, name="ckpt.pth", **extra):
    """A file in the release's DeiT-trainer format (with an argparse.Namespace, as the real ones have)."""
    path = tmp_path / name
    torch.save({"model": model.state_dict(), "epoch": 299, "args": argparse.Namespace(model="vim_tiny"), **extra}, path)
    return str(path)


def _tiny(**kw):
    return vim.VisionMamba(**{**dict(embed_dim=32, depth=3, d_state=4, img_size=64, num_classes=10), **kw})


def test_official_format_round_trip_gives_same_logits(tmp_path):
    src = _tiny().eval()
    path = _official_file(tmp_path, src)
    dst = _tiny().eval()
    report = vim.load_pretrained(dst, path)
    assert report == {"missing": [], "unexpected": [], "head_dropped": False}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(src(x), dst(x), atol=1e-6)


def test_create_model_loads_real_variant_file(tmp_path):
    src = vim.create_model("vim_tiny_patch16_224").eval()
    path = _official_file(tmp_path, src)
    dst = vim.create_model("vim_tiny_patch16_224", checkpoint=path).eval()
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def test_load_state_dict_accepts_the_wrapped_official_dict():
    src = _tiny()
    dst = _tiny()
    dst.load_state_dict({"model": src.state_dict()})  # unwrapped by the pre-hook, strict
    assert torch.equal(dst.pos_embed, src.pos_embed)


def test_finetune_at_other_resolution_and_stride_resizes_pos_embed(tmp_path):
    src = _tiny()
    path = _official_file(tmp_path, src)
    dst = _tiny(img_size=(48, 96), stride=8)
    vim.load_pretrained(dst, path)
    assert dst.pos_embed.shape == (1, 5 * 11 + 1, 32)
    # cls slot copied from the source's middle to the destination's middle
    assert torch.equal(split_pos_embed(dst.pos_embed, 1)[1], split_pos_embed(src.pos_embed, 1)[1])


def test_dense_model_without_cls_and_head(tmp_path):
    src = _tiny()
    dst = _tiny(class_token=False, num_classes=0, img_size=(32, 64))
    report = vim.load_pretrained(dst, _official_file(tmp_path, src))
    assert report["missing"] == [] and dst.cls_token is None
    g = split_pos_embed(src.pos_embed, 1)[0].reshape(1, 4, 4, 32)
    assert dst.pos_embed.shape == (1, 8, 32)
    # same-size grid at 64x64 is copied exactly, cls removed from its middle slot
    dst2 = _tiny(class_token=False, num_classes=0)
    vim.load_pretrained(dst2, _official_file(tmp_path, src))
    assert torch.equal(dst2.pos_embed.reshape(1, 4, 4, 32), g)


def test_other_class_count_drops_head(tmp_path):
    dst = _tiny(num_classes=3)
    report = vim.load_pretrained(dst, _official_file(tmp_path, _tiny()))
    assert report["head_dropped"] and report["missing"] == []


def test_other_variant_names_the_shape_mismatch(tmp_path):
    path = _official_file(tmp_path, _tiny(embed_dim=48))
    with pytest.raises(ValueError, match=r"shape mismatch for .*patch_embed.proj.weight: checkpoint \(48, 3, 16, 16\) vs model \(32, 3, 16, 16\).*embed_dim=48"):
        vim.load_pretrained(_tiny(), path)


def test_missing_and_unexpected_keys_named(tmp_path):
    sd = _tiny().state_dict()
    sd.pop("layers.1.mixer.D_b")
    sd["layers.7.mixer.D"] = torch.zeros(64)
    path = tmp_path / "bad.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(ValueError, match=r"missing \['layers.1.mixer.D_b'\], unexpected \['layers.7.mixer.D'\]"):
        vim.load_pretrained(_tiny(), str(path))


def test_truncated_and_missing_files(tmp_path):
    path = _official_file(tmp_path, _tiny())
    data = open(path, "rb").read()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt"):
        vim.create_model("vim_tiny_patch16_224", checkpoint=str(bad))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vim.load_weights_file(str(tmp_path / "nope.pth"))


class Evil:
    """Stands for any non-weight object a pickle could carry."""


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": _tiny().state_dict(), "obj": Evil()}, path)
    with pytest.raises(ValueError, match="holds objects other than weights"):
        vim.load_weights_file(str(path))
