import argparse

import numpy as np
import pytest
import torch

pytest.importorskip("mmengine")

import vim_backbone as vim  # noqa: E402
from vim_backbone.mm import checkpoint_io  # noqa: E402


def _tiny():
    return vim.VisionMamba(embed_dim=32, depth=2, d_state=4, img_size=32, num_classes=5)


def test_official_file_is_converted_to_mm_layout(tmp_path):
    sd = _tiny().state_dict()
    path = tmp_path / "official.pth"
    torch.save({"model": sd, "args": argparse.Namespace(lr=1)}, path)
    ckpt = checkpoint_io.load_checkpoint_file(str(path))
    out = ckpt["state_dict"]
    assert set(out) == {("head.fc." + k[5:]) if k.startswith("head.") else "backbone." + k for k in sd}
    assert torch.equal(out["backbone.pos_embed"], sd["pos_embed"])


def test_trainer_checkpoint_needs_trust(tmp_path, monkeypatch):
    monkeypatch.delenv(checkpoint_io.TRUST_ENV, raising=False)
    run = tmp_path / "run"
    run.mkdir()
    path = run / "iter_10.pth"
    # like mmengine's: tensors plus arbitrary pickled objects (numpy arrays here)
    torch.save({"state_dict": _tiny().state_dict(), "meta": {"hist": np.arange(3)}}, path)
    with pytest.raises(ValueError, match="--trust-checkpoint"):
        checkpoint_io.load_checkpoint_file(str(path))
    # the run dir written by tools/train.py carries mmengine's last_checkpoint marker naming a file there
    (run / "last_checkpoint").write_text(str(path))
    assert checkpoint_io.is_trusted(str(path))
    assert "state_dict" in checkpoint_io.load_checkpoint_file(str(path))
    # a marker pointing elsewhere does not make this directory trusted
    (run / "last_checkpoint").write_text(str(tmp_path / "other" / "iter_1.pth"))
    assert not checkpoint_io.is_trusted(str(path))
    monkeypatch.setenv(checkpoint_io.TRUST_ENV, "1")
    assert checkpoint_io.is_trusted(str(path))
