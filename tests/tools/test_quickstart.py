"""README command 1's main job, shortened: toy COCO -> train -> COCO mAP -> PNG."""
import os

import pytest
from PIL import Image

pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops")

from tests.helpers import load_tool  # noqa: E402


def test_quickstart_short_run(tmp_path, one_thread):
    out = load_tool("quickstart").main(["--iters", "8", "--data", str(tmp_path / "data"),
                                        "--work-dir", str(tmp_path / "work")])
    assert all(isinstance(out[k], float) and 0.0 <= out[k] <= 1.0 for k in ("bbox_mAP", "segm_mAP"))
    with Image.open(out["png"]) as png:
        assert png.format == "PNG" and png.size == (128, 128)  # the toy val image, drawn on
    assert os.path.isfile(out["checkpoint"])
    assert set(out["untrained"]) == {"bbox_mAP", "bbox_mAP_50", "segm_mAP", "segm_mAP_50"}


def test_quickstart_rejects_too_few_iterations():
    with pytest.raises(SystemExit):
        load_tool("quickstart").parse_args(["--iters", "2"])
