"""tools/convert_checkpoint.py: official file -> core / mmpretrain / mmdet / mmseg files that load strictly."""
import argparse
import os.path as osp

import pytest
import torch

from vim_backbone import VisionMamba, load_weights_file
from vim_backbone.layers import resize_pos_embed, split_pos_embed
from tests.helpers import load_tool as load_tool_named  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ARCH = dict(embed_dim=32, depth=2, d_state=4)


def load_tool():
    return load_tool_named("convert_checkpoint")


@pytest.fixture
def official(tmp_path):
    """Release-format file of a small Vim stored for 224 px at stride 16 (14 x 14 grid + mid cls)."""
    model = VisionMamba(img_size=224, num_classes=7, **ARCH).eval()
    path = str(tmp_path / "official.pth")
    torch.save({"model": model.state_dict(), "model_ema": {k: v + 1 for k, v in model.state_dict().items()},
                "args": argparse.Namespace(model="vim_test")}, path)
    return model, path


def test_to_core_round_trip_and_stride8(official, tmp_path):
    model, src = official
    tool = load_tool()
    dst = str(tmp_path / "core.pth")
    report = tool.main([src, dst, "--to", "core"])
    assert (report["stride"], report["class_token"], report["num_classes"]) == (16, True, 7)
    sd = load_weights_file(dst)["model"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(sd[k], v, rtol=0, atol=0)

    dst8 = str(tmp_path / "core_s8.pth")
    report = tool.main([src, dst8, "--to", "core", "--stride", "8"])
    assert report["pos_embed"] == ((1, 197, 32), (1, 730, 32))
    sd8 = load_weights_file(dst8)["model"]
    torch.testing.assert_close(sd8["pos_embed"], resize_pos_embed(model.pos_embed.data, (27, 27), (14, 14), num_cls=1))
    torch.testing.assert_close(sd8["pos_embed"][:, 729 // 2], model.pos_embed.data[:, 196 // 2])  # cls slot kept
    target = VisionMamba(img_size=224, stride=8, num_classes=7, **ARCH)
    target.load_state_dict(sd8, strict=True)


def test_to_mmpretrain_layout(official, tmp_path):
    model, src = official
    dst = str(tmp_path / "cls.pth")
    load_tool().main([src, dst, "--to", "mmpretrain"])
    ckpt = load_weights_file(dst)
    sd = ckpt["state_dict"]
    assert ckpt["meta"]["target"] == "mmpretrain"
    assert set(sd) == {f"backbone.{k}" for k in model.state_dict() if not k.startswith("head.")} | {"head.fc.weight", "head.fc.bias"}
    torch.testing.assert_close(sd["head.fc.weight"], model.head.weight.data, rtol=0, atol=0)


@pytest.mark.parametrize("target", ["mmseg", "mmdet"])
def test_to_dense_drops_cls_token_and_head(official, tmp_path, target):
    model, src = official
    dst = str(tmp_path / f"{target}.pth")
    report = load_tool().main([src, dst, "--to", target, "--img-size", "512"])
    assert report["class_token"] is False and report["num_classes"] == 0
    sd = load_weights_file(dst)["state_dict"]
    assert all(k.startswith("backbone.") for k in sd) and "backbone.cls_token" not in sd
    grid_only = split_pos_embed(model.pos_embed.data, 1)[0]
    torch.testing.assert_close(sd["backbone.pos_embed"], resize_pos_embed(grid_only, (32, 32), (14, 14), num_cls=0))
    dense = VisionMamba(img_size=512, num_classes=0, class_token=False, **ARCH)
    dense.load_state_dict({k[len("backbone."):]: v for k, v in sd.items()}, strict=True)


def test_mm_checkpoint_back_to_core(official, tmp_path):
    model, src = official
    tool = load_tool()
    mm = str(tmp_path / "cls.pth")
    tool.main([src, mm, "--to", "mmpretrain"])
    core = str(tmp_path / "core.pth")
    tool.main([mm, core, "--to", "core"])
    sd = load_weights_file(core)["model"]
    assert set(sd) == set(model.state_dict())


def test_errors_name_the_problem(official, tmp_path):
    model, src = official
    tool = load_tool()
    bad = str(tmp_path / "not_vim.pth")
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, bad)
    with pytest.raises(SystemExit, match="not a Vim state dict"):
        tool.main([bad, str(tmp_path / "x.pth"), "--to", "core"])
    extra = str(tmp_path / "extra.pth")
    sd = dict(model.state_dict(), **{"layers.0.mixer.bogus": torch.zeros(1)})
    torch.save({"model": sd}, extra)
    with pytest.raises(SystemExit, match=r"unexpected keys \['layers.0.mixer.bogus'\]"):
        tool.main([extra, str(tmp_path / "y.pth"), "--to", "core"])
    assert not osp.exists(str(tmp_path / "y.pth"))
    headless = str(tmp_path / "headless.pth")
    torch.save({"model": {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}}, headless)
    with pytest.raises(SystemExit, match="no classification head"):
        tool.main([headless, str(tmp_path / "z.pth"), "--to", "mmpretrain"])
