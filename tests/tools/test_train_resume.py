"""``tools/train.py --resume`` after a killed run continues from the last checkpoint (toy det config, CPU)."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
import torch
from tests.helpers import load_tool  # noqa: E402

pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops", reason="mmcv built with ops (RoIAlign, nms) is needed by mmdet's heads")

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, "configs", "det", "mask-rcnn_vim-t-tiny_toy-coco.py")
ITER_LINE = re.compile(r"Iter\(train\) \[\s*(\d+)/(\d+)\]")


def run_logs(work_dir: str) -> list:
    return sorted(glob.glob(osp.join(work_dir, "*", "*.log")))


def test_resume_after_kill_continues_from_last_checkpoint(tmp_path, one_thread):
    data_root = str(tmp_path / "toy_coco") + "/"
    load_tool("make_toy_coco").make_toy_coco(data_root, num_train=8, num_val=2, size=96, seed=1)
    work_dir = str(tmp_path / "work")
    common = [f"{k}.dataset.data_root={data_root}" for k in ("train_dataloader", "val_dataloader", "test_dataloader")]
    common += [f"{k}.ann_file={data_root}annotations/val.json" for k in ("val_evaluator", "test_evaluator")]
    common += ["train_dataloader.batch_size=2", "default_hooks.checkpoint.interval=2",
               "default_hooks.logger.interval=1", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"]

    # 1. a long run, killed once its first checkpoint is complete (last_checkpoint is written after it)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [sys.executable, osp.join(ROOT, "tools", "train.py"), TOY_CONFIG, "--work-dir", work_dir,
           "--cfg-options", *common, "train_cfg.max_iters=1000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marker = osp.join(work_dir, "last_checkpoint")
    try:
        deadline = time.time() + 600
        while not osp.isfile(marker):
            if proc.poll() is not None:
                pytest.fail(f"training exited early (rc {proc.returncode}):\n{proc.stderr.read()[-3000:]}")
            if time.time() > deadline:
                pytest.fail("no checkpoint within 600 s")
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    with open(marker) as f:
        last = f.read().strip()
    killed_at = int(re.search(r"iter_(\d+)\.pth$", last).group(1))
    assert killed_at >= 2 and killed_at % 2 == 0
    logs_before = run_logs(work_dir)

    # 2. resume without a path: the latest checkpoint of the work dir, two more iterations
    target = killed_at + 2
    load_tool("train").main([TOY_CONFIG, "--work-dir", work_dir, "--resume",
                             "--cfg-options", *common, f"train_cfg.max_iters={target}"])
    new_logs = [p for p in run_logs(work_dir) if p not in logs_before]
    assert len(new_logs) == 1
    text = open(new_logs[0]).read()
    assert f"resumed epoch: 0, iter: {killed_at}" in text
    iters = [int(m.group(1)) for m in ITER_LINE.finditer(text)]
    assert iters == [killed_at + 1, killed_at + 2], f"the resumed run trained iterations {iters}"
    ckpt = torch.load(osp.join(work_dir, f"iter_{target}.pth"), map_location="cpu", weights_only=False)
    assert ckpt["meta"]["iter"] == target
    with open(marker) as f:
        assert f.read().strip().endswith(f"iter_{target}.pth")
