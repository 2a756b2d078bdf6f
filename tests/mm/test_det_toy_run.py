"""The toy detection config end to end: generated COCO set -> tools/train.py -> tools/test.py (CocoMetric)."""
import os.path as osp

import pytest
from tests.helpers import load_tool  # noqa: E402

pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops", reason="mmcv built with ops (RoIAlign, nms) is needed by mmdet's heads")
pytest.importorskip("pycocotools")

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, "configs", "det", "mask-rcnn_vim-t-tiny_toy-coco.py")


def toy_data_options(data_root: str) -> list:
    """``--cfg-options`` pointing the toy config at a data root other than data/toy_coco/."""
    data_root = data_root.rstrip("/") + "/"
    return [f"{key}.dataset.data_root={data_root}" for key in ("train_dataloader", "val_dataloader", "test_dataloader")] + \
        [f"{key}.ann_file={data_root}annotations/val.json" for key in ("val_evaluator", "test_evaluator")]


@pytest.fixture(scope="module")
def toy_coco(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("toy_coco"))
    load_tool("make_toy_coco").make_toy_coco(root, num_train=16, num_val=6, size=128, seed=0)
    return root


def test_make_toy_coco_is_deterministic(tmp_path):
    import json
    make = load_tool("make_toy_coco").make_toy_coco
    a = make(str(tmp_path / "a"), num_train=4, num_val=2, seed=3)
    b = make(str(tmp_path / "b"), num_train=4, num_val=2, seed=3)
    c = make(str(tmp_path / "c"), num_train=4, num_val=2, seed=4)
    for split in ("train", "val"):
        assert open(a[split]).read() == open(b[split]).read()
    assert open(a["train"]).read() != open(c["train"]).read()
    coco = json.load(open(a["train"]))
    assert [c["name"] for c in coco["categories"]] == ["rectangle", "ellipse", "triangle"]
    for ann in coco["annotations"]:
        poly = ann["segmentation"][0]
        xs, ys = poly[0::2], poly[1::2]
        x, y, w, h = ann["bbox"]
        assert len(poly) >= 6 and ann["area"] > 0
        assert min(xs) == pytest.approx(x, abs=0.02) and max(ys) == pytest.approx(y + h, abs=0.02)


def test_toy_train_then_test_gives_coco_metrics(toy_coco, tmp_path, one_thread):
    train, test = load_tool("train"), load_tool("test")
    work_dir = str(tmp_path / "work")
    options = toy_data_options(toy_coco) + [
        "train_cfg.max_iters=4", "train_cfg.val_interval=4", "default_hooks.checkpoint.interval=4",
        "default_hooks.logger.interval=1", "train_dataloader.batch_size=2",
        # an almost untrained model scores below the default 0.05: keep its boxes so both metrics exist
        "model.test_cfg.rcnn.score_thr=0.0"]
    train.main([TOY_CONFIG, "--work-dir", work_dir, "--cfg-options", *options])
    ckpt = osp.join(work_dir, "iter_4.pth")
    assert osp.isfile(ckpt)
    metrics = test.main([TOY_CONFIG, ckpt, "--work-dir", str(tmp_path / "test"), "--cfg-options", *options])
    for key in ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/segm_mAP", "coco/segm_mAP_50"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, metrics
