"""timm registration: every variant by name, release files through ``pretrained_cfg_overlay``, features_only."""
import argparse
import os
import subprocess
import sys

import pytest
import torch

timm = pytest.importorskip("timm")

import vim_backbone  # noqa: E402
import vim_backbone.timm_models  # noqa: E402,F401  (registers the variants)
from vim_backbone import VisionMamba  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_FILES = {
    "vim_tiny_patch16_224": ("hustvl/Vim-tiny-midclstok", "vim_t_midclstok_76p1acc.pth"),
    "vim_tiny_patch16_stride8_224": ("hustvl/Vim-tiny-midclstok", "vim_t_midclstok_ft_78p3acc.pth"),
    "vim_small_patch16_224": ("hustvl/Vim-small-midclstok", "vim_s_midclstok_80p5acc.pth"),
    "vim_small_patch16_stride8_224": ("hustvl/Vim-small-midclstok", "vim_s_midclstok_ft_81p6acc.pth"),
    "vim_base_patch16_224": ("hustvl/Vim-base-midclstok", "vim_b_midclstok_81p9acc.pth"),
}


@pytest.fixture(scope="module")
def official_ti(tmp_path_factory):
    """A Vim-Ti file in the release format; ``model_ema`` differs, so picking it would show."""
    torch.manual_seed(0)
    sd = vim_backbone.create_model("vim_tiny_patch16_224").state_dict()
    sd["head.weight"] *= 20  # spread the logits
    path = str(tmp_path_factory.mktemp("official") / "vim_t_midclstok_76p1acc.pth")
    torch.save({"model": sd, "model_ema": {k: v + 0.5 for k, v in sd.items()}, "epoch": 299, "scaler": "none",
                "args": argparse.Namespace(model="vim_tiny_patch16_224", lr=1e-3)}, path)
    return path


def test_import_vim_backbone_does_not_import_timm():
    code = "import sys, vim_backbone; sys.exit('timm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_registry_has_every_variant_with_its_release_cfg():
    assert sorted(timm.list_models("vim_*")) == vim_backbone.list_models()
    assert sorted(timm.list_pretrained("vim_*")) == [f"{n}.in1k" for n in vim_backbone.list_models()]
    for name, (hub_id, filename) in HF_FILES.items():
        cfg = timm.models.get_pretrained_cfg(f"{name}.in1k").to_dict()
        assert (cfg["hf_hub_id"], cfg["hf_hub_filename"]) == (hub_id, filename)
        assert (cfg["first_conv"], cfg["classifier"], cfg["num_classes"]) == ("patch_embed.proj", "head", 1000)
        assert tuple(cfg["mean"]) == timm.data.IMAGENET_DEFAULT_MEAN
        assert tuple(cfg["std"]) == timm.data.IMAGENET_DEFAULT_STD
        assert (cfg["interpolation"], cfg["crop_pct"], cfg["fixed_input_size"]) == ("bicubic", 0.875, False)


@pytest.mark.parametrize("name", sorted(HF_FILES))
def test_create_every_variant(name):
    model = timm.create_model(name, pretrained=False)
    ref = vim_backbone.create_model(name)
    assert type(model) is VisionMamba
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert model.patch_embed.stride == ref.patch_embed.stride
    assert model.pretrained_cfg["hf_hub_id"] == HF_FILES[name][0]


def test_pretrained_official_file_gives_core_logits(official_ti):
    model = timm.create_model("vim_tiny_patch16_224", pretrained=True,
                              pretrained_cfg_overlay=dict(file=official_ti)).eval()
    core = vim_backbone.create_model("vim_tiny_patch16_224", checkpoint=official_ti).eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        expected = core(x)
        assert expected.std() > 1.0
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_pretrained_stride16_file_into_stride8_and_other_heads(official_ti):
    """Stride-8 variant from a stride-16 file (pos_embed resized with the mid cls slot); 10 classes."""
    model = timm.create_model("vim_tiny_patch16_stride8_224", pretrained=True,
                              pretrained_cfg_overlay=dict(file=official_ti)).eval()
    core = vim_backbone.create_model("vim_tiny_patch16_stride8_224", checkpoint=official_ti).eval()
    assert model.pos_embed.shape == (1, 27 * 27 + 1, 192)
    torch.testing.assert_close(model.pos_embed, core.pos_embed, rtol=0, atol=0)
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), core(x), rtol=0, atol=0)

    ten = timm.create_model("vim_tiny_patch16_224", pretrained=True, num_classes=10, img_size=128,
                            pretrained_cfg_overlay=dict(file=official_ti))
    assert ten.head.out_features == 10 and ten.pos_embed.shape == (1, 8 * 8 + 1, 192)
    torch.testing.assert_close(ten.layers[3].mixer.A_log, core.layers[3].mixer.A_log, rtol=0, atol=0)


def test_features_only(official_ti):
    core = vim_backbone.create_model("vim_tiny_patch16_224", checkpoint=official_ti).eval()
    x = torch.randn(2, 3, 64, 96)
    default = timm.create_model("vim_tiny_patch16_224", features_only=True, pretrained=True,
                                pretrained_cfg_overlay=dict(file=official_ti)).eval()
    assert default.feature_info.channels() == [192] * 3 and default.feature_info.reduction() == [16] * 3
    with torch.no_grad():
        feats = default(x)
        expected = core.forward_intermediates(x, indices=3, intermediates_only=True)
    assert [tuple(f.shape) for f in feats] == [(2, 192, 4, 6)] * 3
    for f, e in zip(feats, expected):
        torch.testing.assert_close(f, e, rtol=0, atol=0)

    early = timm.create_model("vim_tiny_patch16_224", features_only=True, out_indices=(1, -21), pretrained=True,
                              pretrained_cfg_overlay=dict(file=official_ti)).eval()
    assert len(early.model.layers) == 4  # blocks after the last requested one are pruned
    with torch.no_grad():
        feats = early(x)
        expected = core.forward_intermediates(x, indices=(1, 3), intermediates_only=True)
    assert [tuple(f.shape) for f in feats] == [(2, 192, 4, 6)] * 2
    for f, e in zip(feats, expected):
        torch.testing.assert_close(f, e, rtol=0, atol=0)
