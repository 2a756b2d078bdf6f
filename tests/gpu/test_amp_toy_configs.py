"""AMP on the toy configs: 200 training steps of the toy det and seg configs under bf16 and under fp16.

``configs/det/mask-rcnn_vim-t-tiny_toy-coco.py`` and ``configs/seg/upernet_vim-tiny_toy-ade-128x128.py``
train from scratch on sets generated into a temporary folder (``tools/make_toy_coco.py``,
``tools/make_toy_ade.py``), through the same pieces the runner uses: the config's train dataloader,
model, optimizer wrapper (switched to mmengine's ``AmpOptimWrapper`` with ``dtype`` bfloat16 / float16
and dynamic loss scaling) and lr schedule, one ``model.train_step`` per step. Asserted: every logged
loss of every step is finite, the GradScaler skips fewer than 10% of the steps, and the loss goes down.
The scan backend is the automatic choice (``mamba_ssm`` when installed), as in a user's training.

Each case trains in a child process (``python -X faulthandler``), so a crash fails that case with the
child's stderr (the Python stack of the faulting thread) instead of ending the test session. (The
segmentation fault seen on an H200 on 2026-11-27 came from mmcv's ``get_compiling_cuda_version`` in the
test process, not from training: see :func:`mmcv_cuda_ops`.)
Skipped without CUDA, and the det cases without mmcv's CUDA ops (RoIAlign, nms).
"""
import copy
import json
import math
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import pytest
import torch

from tests.helpers import ROOT, load_tool

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

STEPS = 200
MAX_SKIPPED_FRACTION = 0.1
AMP_DTYPES = ("bfloat16", "float16")


def _make_toy_coco(root: str) -> str:
    load_tool("make_toy_coco").make_toy_coco(root, num_train=32, num_val=2, size=128, seed=0)
    return root


def _make_toy_ade(root: str) -> str:
    return load_tool("make_toy_ade").make_toy_ade(root, seed=0, num_train=16, num_val=2)


# task -> (config, OpenMMLab scope, data generator writing into a folder and returning the data root)
TASKS: Dict[str, tuple] = {
    "det": (osp.join(ROOT, "configs", "det", "mask-rcnn_vim-t-tiny_toy-coco.py"), "mmdet", _make_toy_coco),
    "seg": (osp.join(ROOT, "configs", "seg", "upernet_vim-tiny_toy-ade-128x128.py"), "mmseg", _make_toy_ade),
}


def mmcv_cuda_ops() -> bool:
    """mmcv's nms runs on a CUDA tensor (probed in a child process).

    NOTE: ``mmcv.ops.get_compiling_cuda_version()`` died with a segmentation fault for mmcv 2.1.0 built
    against torch 2.11 + CUDA 13.0 on an H200 (2026-11-27) while the ops worked, so an op is run instead,
    away from the test process.
    """
    code = ("import torch; from mmcv.ops import nms; "
            "nms(torch.tensor([[0., 0., 10., 10.]], device='cuda'), torch.ones(1, device='cuda'), 0.5)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def toy_train_steps(task: str, data_root: str, steps: int, device: torch.device,
                    amp_dtype: Optional[str]) -> dict:
    """``steps`` training steps of the task's toy config; ``amp_dtype`` None trains in fp32.

    Returns ``losses`` (the logged values of every step, as floats), ``skipped`` (steps whose update the
    GradScaler skipped, seen as a drop of its scale) and ``seconds``.
    """
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
    from mmengine.runner import Runner

    config, scope, _ = TASKS[task]
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get("default_scope", scope))
    if scope == "mmdet":
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    cfg.train_dataloader.dataset.data_root = data_root.rstrip("/") + "/"

    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device).train()
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    if amp_dtype is not None:
        wrapper_cfg.update(type="AmpOptimWrapper", dtype=amp_dtype, loss_scale="dynamic")
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    # the config's schedule, stepped per iteration as ParamSchedulerHook does (warm-up from scratch)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optim_wrapper)) for s in cfg.param_scheduler]
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)  # InfiniteSampler: never runs out
    scaler = getattr(optim_wrapper, "loss_scaler", None)

    losses, skipped = [], 0
    t0 = time.perf_counter()
    for _, batch in zip(range(steps), loader):
        scale = scaler.get_scale() if scaler is not None else None
        log_vars = model.train_step(batch, optim_wrapper)
        if scaler is not None and scaler.get_scale() < scale:  # inf/NaN gradients: update skipped
            skipped += 1
        for scheduler in schedulers:
            scheduler.step()
        losses.append({k: float(v) for k, v in log_vars.items()})
    return dict(losses=losses, skipped=skipped, seconds=time.perf_counter() - t0)


def run_isolated(task: str, data_root: str, steps: int, amp_dtype: Optional[str], timeout: float = 1200) -> dict:
    """:func:`toy_train_steps` on CUDA in a child interpreter; fails the test with its stderr if it dies."""
    code = (f"import json, sys, torch; sys.path.insert(0, {ROOT!r}); torch.manual_seed(0); "
            "from tests.gpu.test_amp_toy_configs import toy_train_steps; "
            f"r = toy_train_steps({task!r}, {data_root!r}, {steps}, torch.device('cuda'), {amp_dtype!r}); "
            "print('RESULT ' + json.dumps(r))")
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        pytest.fail(f"{task} {amp_dtype}: the training child exited with {proc.returncode}; stderr tail:\n"
                    f"{proc.stderr[-6000:]}")
    return json.loads(results[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Callable[[str], str]:
    """``toy_data(task)``: the task's generated data root, written once per module."""
    roots: Dict[str, str] = {}

    def get(task: str) -> str:
        if task not in roots:
            roots[task] = TASKS[task][2](str(tmp_path_factory.mktemp(f"toy_{task}")))
        return roots[task]

    return get


@pytest.mark.parametrize("amp_dtype", AMP_DTYPES)
@pytest.mark.parametrize("task", sorted(TASKS))
def test_amp_toy_training(task, amp_dtype, toy_data):
    pytest.importorskip("mmdet" if task == "det" else "mmseg")
    if task == "det" and not mmcv_cuda_ops():
        pytest.skip("mmcv without CUDA ops (RoIAlign, nms): bash tools/install_cuda_ops.sh")
    from vim_backbone.ops import resolve_backend
    device = torch.device("cuda")
    run = run_isolated(task, toy_data(task), STEPS, amp_dtype)
    losses = run["losses"]
    where = f"{task} {amp_dtype} (scan backend {resolve_backend(None, device)})"
    print(f"{where}: {len(losses)} steps in {run['seconds']:.1f} s, {run['skipped']} skipped, "
          f"loss {losses[0]['loss']:.3f} -> {losses[-1]['loss']:.3f}")

    assert len(losses) == STEPS
    bad = [(i, k, v) for i, step in enumerate(losses) for k, v in step.items() if not math.isfinite(v)]
    assert not bad, f"{where}: non-finite losses (step, name, value), first 10: {bad[:10]}"
    assert run["skipped"] < MAX_SKIPPED_FRACTION * STEPS, \
        f"{where}: the GradScaler skipped {run['skipped']} of {STEPS} steps"
    first, last = (sum(s["loss"] for s in part) / len(part) for part in (losses[:20], losses[-20:]))
    assert last < first, f"{where}: mean loss of the first 20 steps {first:.4f}, of the last 20 {last:.4f}"
