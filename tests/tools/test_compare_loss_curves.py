import json
import math

import pytest

from tests.helpers import load_tool

tool = load_tool("compare_loss_curves")


def _write_run(root, values, seed_shift=0.0):
    vis = root / "20260101_000000" / "vis_data"
    vis.mkdir(parents=True)
    with open(vis / "scalars.json", "w") as f:
        for step, v in enumerate(values, start=1):
            f.write(json.dumps({"loss": v + seed_shift, "lr": 0.1, "step": step}) + "\n")
            f.write(json.dumps({"coco/bbox_mAP": 0.1, "step": step}) + "\n")  # other records are skipped
    return root


def test_same_curve_gives_zero_z_and_offset_curve_large_z(tmp_path):
    base = [2.0 - 0.01 * i + 0.05 * math.sin(i) for i in range(100)]
    ref = _write_run(tmp_path / "ref", base)
    same = _write_run(tmp_path / "same", base)
    off = _write_run(tmp_path / "off", base, seed_shift=0.5)
    res = tool.main([f"ref={ref}", f"same={same}", f"off={off}", "--window", "20", "--out", str(tmp_path / "c.json")])
    assert res["steps"] == 100 and len(res["windows"]) == 5
    assert res["summary"]["same"]["max_z"] == 0.0
    assert res["summary"]["off"]["mean_diff"] == pytest.approx(0.5)
    assert res["summary"]["off"]["mean_abs_z"] > 5
    assert json.loads((tmp_path / "c.json").read_text())["reference"] == "ref"


def test_missing_key_and_no_common_steps(tmp_path):
    ref = _write_run(tmp_path / "ref", [1.0, 2.0])
    with pytest.raises(ValueError, match="no 'acc' values"):
        tool.read_curve(str(ref), "acc")
    with pytest.raises(ValueError, match="share no logged step"):
        tool.compare({"a": {1: 1.0}, "b": {2: 1.0}}, 5)
