"""Throughput (img/s) and peak memory of Vim vs DeiT backbones across resolutions.

Vim-Ti/S (``vim_backbone.create_model(..., num_classes=0).forward_features``) with each selected scan
backend, against DeiT-Ti/S from timm with naive attention (``softmax(q @ k^T) @ v``, what the Vim paper
compared with) and with ``F.scaled_dot_product_attention`` (what timm uses by default). fp32 and bf16
(autocast), inference and a training step (forward + backward of the mean of the features, no
optimizer). Out-of-memory is recorded as ``OOM``, not fatal.

    # the H100/H200 table in docs/ (about 5 min)
    python tools/benchmark.py --out docs/benchmark_h100.json --plot docs/benchmark_h100.png
    # quick look at one setting
    python tools/benchmark.py --models vim_tiny deit_tiny --dtypes bf16 --modes infer --resolutions 1024 1248
    # inference from CUDA graphs: the GPU's time alone (small batches are bound by kernel launches)
    python tools/benchmark.py --models vim_tiny deit_tiny --dtypes bf16 --modes infer --cuda-graph
    # training steps from CUDA graphs too: the GPU's time of a step (eager training can wait for the host)
    python tools/benchmark.py --models vim_tiny deit_tiny --dtypes bf16 --modes train --cuda-graph-train
    # CI smoke test on CPU
    python tools/benchmark.py --device cpu --resolutions 64 --iters 2 --models vim_tiny deit_tiny --out /tmp/b.json

``--full det|seg`` times the whole detector / segmentor of a config instead (Vim only; by default
``configs/det/cascade-mask-rcnn_vim-t-sfp_lsj-100e_coco.py`` and
``configs/seg/upernet_vim-t_8xb2-160k_ade20k-512x512.py``, ``--config`` for another): ``predict`` on a
synthetic batch of the resolution (the seg model in ``whole`` mode, one window of that size) and a
training step (``loss`` + backward, no optimizer), the backbone built with each scan backend and no
pretrained weights. ``--tiny`` shrinks backbone and heads (CPU smoke test). The GPU batches default to
{224: 16, 512: 8, 738: 4, 1024: 2, 1248: 2} (training: half, at least 2); the data preprocessing is not timed.

    python tools/benchmark.py --full det --dtypes bf16 --resolutions 512 1024 --out docs/benchmark_det.json
    python tools/benchmark.py --full seg --device cpu --tiny --resolutions 64 --iters 1 --out /tmp/s.json

The JSON records the device, versions and every setting next to each number; ``--plot`` draws the
figure of the Vim paper's Fig. 1 (img/s and peak memory vs resolution) from it, one row per
(dtype, mode). ``--plot-only results.json`` redraws a plot from an earlier run.
"""
import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

try:
    from mmengine.config import DictAction
except ImportError:  # only --full needs OpenMMLab
    DictAction = None

if TYPE_CHECKING:
    from mmengine.config import Config, ConfigDict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

VIM_MODELS = {"vim_tiny": "vim_tiny_patch16_224", "vim_small": "vim_small_patch16_224"}
DEIT_MODELS = {"deit_tiny": "deit_tiny_patch16_224", "deit_small": "deit_small_patch16_224"}
ALL_MODELS = tuple(VIM_MODELS) + tuple(DEIT_MODELS)
VIM_BACKENDS = ("reference", "mamba_ssm", "fused")
ATTN_IMPLS = ("naive", "sdpa")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("infer", "train")
DEFAULT_RESOLUTIONS = (224, 512, 738, 1024, 1248)
# Images per batch (inference) on a GPU: large enough to fill an H100 with the tiny models at 224,
# small enough that naive-attention DeiT-S fits at 1248 in bf16. Training uses half (at least 1).
DEFAULT_GPU_BATCH = {224: 128, 512: 32, 738: 16, 1024: 8, 1248: 8}
DEFAULT_CPU_BATCH = 2
# --full: the default configs and their OpenMMLab scope. NOTE the GPU batches are a first guess (not tuned
# on a GPU); an OOM is recorded, not fatal.
FULL_TASKS = {
    "det": ("mmdet", "configs/det/cascade-mask-rcnn_vim-t-sfp_lsj-100e_coco.py"),
    "seg": ("mmseg", "configs/seg/upernet_vim-t_8xb2-160k_ade20k-512x512.py"),
}
DEFAULT_GPU_BATCH_FULL = {224: 16, 512: 8, 738: 4, 1024: 2, 1248: 2}
# --tiny: depth 4 so that the seg configs' four taps get four distinct blocks
TINY_ARCH = dict(embed_dim=32, depth=4, d_state=4)
TINY_CHANNELS = 32


def parse_batch_sizes(specs: Optional[Sequence[str]], resolutions: Sequence[int], default: Dict[int, int],
                      fallback: int) -> Dict[int, int]:
    """``["8"]`` (all resolutions) or ``["224:128", "1248:4"]`` -> {resolution: batch}."""
    out = {r: default.get(r, fallback) for r in resolutions}
    for spec in specs or ():
        if ":" in spec:
            res, bs = spec.split(":", 1)
            out[int(res)] = int(bs)
        else:
            out = {r: int(spec) for r in resolutions}
    bad = {r: b for r, b in out.items() if b < 1}
    if bad:
        raise ValueError(f"batch sizes must be >= 1, got {bad}")
    return out


# --------------------------------------------------------------------------------------------- models
def build_vim(name: str, resolution: int, backend: str, scan_recompute: bool = True) -> nn.Module:
    from vim_backbone import create_model
    return create_model(VIM_MODELS[name], num_classes=0, img_size=resolution, scan_backend=backend,
                        scan_recompute=scan_recompute)


def set_deit_attention(model: nn.Module, impl: str) -> int:
    """Switch every timm ``Attention`` of ``model`` to naive (``fused_attn=False``) or SDPA; returns count."""
    count = 0
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = impl == "sdpa"
            count += 1
    if count == 0:
        raise RuntimeError("no timm attention module with a `fused_attn` switch found; timm too old (need >= 0.9)")
    return count


def build_deit(name: str, resolution: int, attn: str) -> nn.Module:
    import timm
    model = timm.create_model(DEIT_MODELS[name], pretrained=False, num_classes=0, img_size=resolution)
    set_deit_attention(model, attn)
    return model


def vim_backend_note(backend: str, device: torch.device) -> Optional[str]:
    """None if ``backend`` runs on ``device``, else why not."""
    from vim_backbone.ops import resolve_backend
    try:
        resolve_backend(backend, device)
    except (ImportError, ValueError) as e:
        return str(e)
    if backend == "fused" and device.type != "cuda":
        return "fused (Triton) is only benchmarked on CUDA (on CPU it would run in the Triton interpreter)"
    return None


# ------------------------------------------------------------------------------ full models (--full)
def load_full_config(task: str, path: Optional[str] = None, cfg_options: Optional[dict] = None,
                     tiny: bool = False) -> "Config":
    """The task's config (``mmengine.Config``) with ``--cfg-options`` applied and, with ``tiny``, shrunk."""
    from mmengine.config import Config

    from vim_backbone.mm.runner_config import shrink_model_cfg
    if task not in FULL_TASKS:
        raise ValueError(f"--full {task!r} not in {sorted(FULL_TASKS)}")
    cfg = Config.fromfile(path or os.path.join(ROOT, FULL_TASKS[task][1]))  # imports its custom_imports
    if cfg.model.backbone.get("type") != "VimBackbone":
        raise ValueError(f"--full needs a config with a VimBackbone, got backbone {cfg.model.backbone.get('type')!r}")
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if tiny:
        shrink_model_cfg(cfg.model, task, TINY_ARCH, TINY_CHANNELS)
    return cfg


def full_model_config(cfg: "Config", task: str, resolution: int, backend: str) -> "ConfigDict":
    """``cfg.model`` for square ``resolution`` inputs, scan ``backend``, random init (no checkpoint read)."""
    import copy
    model = copy.deepcopy(cfg.model)
    model.backbone.update(img_size=resolution, scan_backend=backend, init_cfg=None)
    if model.get("pretrained") is not None:  # mmseg's other way to load backbone weights
        model.pretrained = None
    size = (resolution, resolution)
    if task == "det":
        for aug in model.data_preprocessor.get("batch_augments") or []:
            if aug.type == "BatchFixedSizePad":  # LSJ pads every batch to the training square
                aug.size = size
    else:
        model.data_preprocessor.size = size
        # one window of the resolution (a sliding window would time several crops of the config's size)
        model.test_cfg = dict(mode="whole")
    return model


def num_classes_of(model: "ConfigDict", task: str) -> int:
    if task == "seg":
        return model.decode_head.num_classes
    if "bbox_head" in model:
        return model.bbox_head.num_classes
    head = model.roi_head.bbox_head
    return (head[0] if isinstance(head, list) else head).num_classes


def build_full(cfg: "Config", task: str, resolution: int, backend: str) -> nn.Module:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    scope = FULL_TASKS[task][0]
    init_default_scope(cfg.get("default_scope", scope))
    if scope == "mmdet":
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    from mmengine.logging import MMLogger
    model = MODELS.build(full_model_config(cfg, task, resolution, backend))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel("WARNING")  # init_weights logs a line per parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return revert_sync_batchnorm(model)  # SyncBN needs a process group; one process here, as mmengine does


def full_batch(task: str, batch_size: int, resolution: int, num_classes: int) -> dict:
    """A synthetic, unpreprocessed batch: ``inputs`` (uint8 CHW images) and data samples with ground truth."""
    shape = (3, resolution, resolution)
    if task == "det":
        from mmdet.testing import demo_mm_inputs
        batch = demo_mm_inputs(batch_size=batch_size, image_shapes=shape, num_items=[3] * batch_size,
                               num_classes=num_classes, with_mask=True)
        for sample in batch["data_samples"]:
            sample.set_metainfo(dict(scale_factor=(1.0, 1.0)))  # not resized: predictions at input size
        return batch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, shape, dtype=torch.uint8))
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=shape[1:], ori_shape=shape[1:], pad_shape=shape[1:]))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *shape[1:])))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _full_step_fn(model: nn.Module, batch: dict, mode: str, amp_dtype: Optional[torch.dtype]):
    """``predict`` or ``loss`` + backward on the preprocessed ``batch`` (preprocessing is not timed)."""
    data = model.data_preprocessor(batch, mode == "train")  # normalised, padded, on the model's device
    inputs, samples = data["inputs"], data["data_samples"]
    device_type = inputs.device.type
    autocast = (torch.autocast(device_type=device_type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())

    def infer():
        with torch.no_grad(), autocast:  # as mmengine's test loop (predict writes into the data samples)
            return model.predict(inputs, samples)

    def train():
        with autocast:
            loss, _ = model.parse_losses(model.loss(inputs, samples))
        loss.backward()
        model.zero_grad(set_to_none=True)

    return infer if mode == "infer" else train, tuple(inputs.shape[-2:])


def full_label(model: "ConfigDict", backend: str) -> str:
    arch = model.backbone.get("arch", "tiny")
    arch = arch if isinstance(arch, str) else f"{arch['embed_dim']}x{arch['depth']}"
    head = model.decode_head.type if "decode_head" in model else model.type  # UPerHead / CascadeRCNN
    return f"Vim-{arch} {head} ({backend})"


# ------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_fn(model: nn.Module, x: torch.Tensor, mode: str, amp_dtype: Optional[torch.dtype], graphed: bool = False):
    """One inference call or one training step (forward, backward, gradients dropped). ``graphed``: the step
    will be captured in a CUDA graph, so autocast keeps no cache of cast weights (PyTorch requires that for
    capture; each weight is cast once a step either way)."""
    device_type = x.device.type
    autocast = (torch.autocast(device_type=device_type, dtype=amp_dtype, cache_enabled=not graphed)
                if amp_dtype is not None else contextlib.nullcontext())

    def infer():
        with torch.inference_mode(), autocast:
            return model.forward_features(x)

    def train():
        with autocast:
            out = model.forward_features(x)
        out.float().mean().backward()
        model.zero_grad(set_to_none=True)

    return infer if mode == "infer" else train


def time_model(model: nn.Module, x: torch.Tensor, mode: str, amp_dtype: Optional[torch.dtype], warmup: int,
               iters: int, cuda_graph: bool = False,
               cuda_graph_train: bool = False) -> Tuple[float, Optional[float], Optional[float], float]:
    """Seconds per iteration, peak allocated and reserved GB (None on CPU), host seconds per iteration
    (see :func:`time_step`). Memory counts weights too. ``cuda_graph``: inference replayed from a CUDA
    graph (:func:`cuda_graphed`); ``cuda_graph_train``: training steps too."""
    model.train(mode == "train")
    graphed = graphed_mode(mode, x.device, cuda_graph, cuda_graph_train)
    step = _step_fn(model, x, mode, amp_dtype, graphed)
    if graphed:
        # the peak is taken over the eager warm-up calls and the capture: a replay allocates nothing (its
        # tensors live in the graph's pool, which the capture filled), so after it only the tensors a
        # step leaves behind would count
        _reset_memory(x.device)
        step = cuda_graphed(step, x.device)
    return time_step(step, x.device, warmup, iters, reset_peak=not graphed)


def _reset_memory(device: torch.device) -> None:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)


def graphed_mode(mode: str, device: torch.device, cuda_graph: bool, cuda_graph_train: bool) -> bool:
    """Whether a step of ``mode`` is replayed from a CUDA graph."""
    return device.type == "cuda" and ((cuda_graph and mode == "infer") or (cuda_graph_train and mode == "train"))


def cuda_graphed(step: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``step`` captured once in a CUDA graph (after two warm-up calls on a side stream, which also compile
    the Triton kernels); returns the graph's replay. With one launch per call the host no longer sets the
    pace: the time is the GPU's alone."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def time_step(step: Callable[[], object], device: torch.device, warmup: int, iters: int,
              reset_peak: bool = True) -> Tuple[float, Optional[float], Optional[float], float]:
    """Seconds per call of ``step``, peak allocated and reserved GB since the warm-up began (``reset_peak``;
    else since the caller reset them) (None on CPU), and
    the host's seconds per call. On CUDA that is the median time Python takes to enqueue one call on an idle
    GPU (synchronised before and after); at or above the first number the GPU waits for the host
    (launch-bound). Calls enqueued back to back cannot measure it: once the driver's launch queue is full
    the host waits for the GPU, and the enqueue time grows to the GPU's. On CPU the two are the same."""
    if device.type == "cuda" and reset_peak:
        _reset_memory(device)
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            step()
        end.record()
        torch.cuda.synchronize(device)
        seconds = start.elapsed_time(end) / 1000.0
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30
        reserved = torch.cuda.max_memory_reserved(device) / 2 ** 30
        enqueue = []
        for _ in range(max(3, min(iters, 7))):
            t0 = time.perf_counter()
            step()
            enqueue.append(time.perf_counter() - t0)
            torch.cuda.synchronize(device)
        return seconds / iters, peak, reserved, statistics.median(enqueue)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = (time.perf_counter() - t0) / iters
    return seconds, None, None, seconds


def _is_oom(err: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    return isinstance(err, oom_types) or "out of memory" in str(err).lower()


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_one(cfg: dict, device: torch.device, warmup: int, iters: int, full_cfg=None,
            cuda_graph: bool = False, cuda_graph_train: bool = False) -> dict:
    """Benchmark one configuration; returns the result record (status ok / OOM / error).

    ``full_cfg`` (``mmengine.Config``): the config of a ``--full`` run (families ``det`` / ``seg``).
    """
    rec = dict(cfg)
    model = x = step = None
    try:
        if cfg["family"] in FULL_TASKS:
            model = build_full(full_cfg, cfg["family"], cfg["resolution"], cfg["impl"]).to(device)
            model.train(cfg["mode"] == "train")
            x = full_batch(cfg["family"], cfg["batch_size"], cfg["resolution"], num_classes_of(full_cfg.model,
                                                                                               cfg["family"]))
            step, (h, w) = _full_step_fn(model, x, cfg["mode"], DTYPES[cfg["dtype"]])
            proj = model.backbone.patch_embed.proj
            grid = [(n - k) // st + 1 for n, k, st in zip((h, w), proj.kernel_size, proj.stride)]
            rec.update(input_size=[h, w], tokens=grid[0] * grid[1])  # of the padded batch
        elif cfg["family"] == "vim":
            model = build_vim(cfg["model"], cfg["resolution"], cfg["impl"], cfg.get("scan_recompute", True))
        else:
            model = build_deit(cfg["model"], cfg["resolution"], cfg["impl"])
        model.to(device)
        rec["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
        if step is None:
            x = torch.randn(cfg["batch_size"], 3, cfg["resolution"], cfg["resolution"], device=device)
            sec, peak, reserved, host = time_model(model, x, cfg["mode"], DTYPES[cfg["dtype"]], warmup, iters,
                                                   cuda_graph, cuda_graph_train)
            rec["cuda_graph"] = graphed_mode(cfg["mode"], device, cuda_graph, cuda_graph_train)
        else:
            sec, peak, reserved, host = time_step(step, device, warmup, iters)
        rec.update(status="ok", ms_per_iter=round(sec * 1000, 3), host_ms_per_iter=round(host * 1000, 3),
                   img_per_s=round(cfg["batch_size"] / sec, 2),
                   peak_mem_gb=None if peak is None else round(peak, 3),
                   peak_reserved_gb=None if reserved is None else round(reserved, 3))
    except Exception as e:  # noqa: BLE001 - one failed setting must not end the sweep
        if _is_oom(e):
            rec.update(status="OOM", img_per_s=None, peak_mem_gb=None)
        else:
            rec.update(status="error", error=f"{type(e).__name__}: {e}"[:500], img_per_s=None, peak_mem_gb=None)
    finally:
        del model, x, step
        _free(device)
    return rec


# ---------------------------------------------------------------------------------------------- sweep
def plan(args, device: torch.device, notes: List[str], full_cfg=None) -> List[dict]:
    infer_bs = parse_batch_sizes(args.batch_sizes, args.resolutions,
                                 ({} if device.type != "cuda" else DEFAULT_GPU_BATCH_FULL if args.full
                                  else DEFAULT_GPU_BATCH),
                                 DEFAULT_CPU_BATCH if device.type != "cuda" else 8)
    # NOTE full models train on at least 2 images: UperNet's 1x1 pooling branch has BatchNorm, which
    # cannot train on a single value per channel
    train_default = {r: max(2 if args.full else 1, b // 2) for r, b in infer_bs.items()}
    train_bs = parse_batch_sizes(args.train_batch_sizes, args.resolutions, train_default, 1)

    impls: Dict[str, List[str]] = {}
    for backend in args.vim_backends:
        note = vim_backend_note(backend, device)
        if note is None:
            impls.setdefault("vim", []).append(backend)
        else:
            notes.append(f"Vim scan backend {backend!r} skipped: {note}")
    impls["deit"] = list(args.attn)

    if args.full:
        name = os.path.splitext(os.path.basename(args.config or FULL_TASKS[args.full][1]))[0]
        return [dict(model=name, family=args.full, impl=backend, label=full_label(full_cfg.model, backend),
                     dtype=dtype, mode=mode, resolution=res, tokens=None,
                     batch_size=(infer_bs if mode == "infer" else train_bs)[res])
                for backend in impls.get("vim", []) for dtype in args.dtypes for mode in args.modes
                for res in args.resolutions]

    cfgs = []
    for model in args.models:
        family = "vim" if model in VIM_MODELS else "deit"
        for impl in impls.get(family, []):
            for dtype in args.dtypes:
                for mode in args.modes:
                    for res in args.resolutions:
                        if (family == "vim" and impl == "reference" and args.reference_max_res
                                and res > args.reference_max_res):
                            notes.append(f"{model}/reference at {res} skipped (--reference-max-res "
                                         f"{args.reference_max_res})")
                            continue
                        grid = res // 16
                        cfgs.append(dict(
                            model=model, family=family, impl=impl, label=label_of(model, impl),
                            dtype=dtype, mode=mode, resolution=res,
                            tokens=grid * grid + 1,
                            batch_size=(infer_bs if mode == "infer" else train_bs)[res]))
                        if family == "vim" and not args.scan_recompute:
                            cfgs[-1].update(scan_recompute=False, label=cfgs[-1]["label"] + " stored")
    return cfgs


def label_of(model: str, impl: str) -> str:
    pretty = {"vim_tiny": "Vim-Ti", "vim_small": "Vim-S", "deit_tiny": "DeiT-Ti", "deit_small": "DeiT-S"}[model]
    return f"{pretty} ({impl})"


def environment(device: torch.device) -> dict:
    from vim_backbone.ops.fused_bimamba import fused_settings

    def version(module: str) -> Optional[str]:
        try:
            from importlib.metadata import version as v
            return v(module)
        except Exception:  # noqa: BLE001
            return None

    env = dict(
        device=str(device),
        device_name=(torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or
                     platform.machine()),
        torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
        timm=version("timm"), mmcv=version("mmcv"), mmdet=version("mmdet"), mmseg=version("mmsegmentation"),
        mamba_ssm=version("mamba-ssm"), causal_conv1d=version("causal-conv1d"),
        triton=version("triton"), host=platform.node(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
        cudnn_benchmark=torch.backends.cudnn.benchmark, cpu_threads=torch.get_num_threads(),
        fused=fused_settings(),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu_memory_gb=round(props.total_memory / 2 ** 30, 1), capability=f"{props.major}.{props.minor}",
                   driver=_driver_version())
    try:
        from vim_backbone import __version__ as vim_version
        env["vim_backbone"] = vim_version
    except Exception:  # noqa: BLE001
        pass
    return env


def _driver_version() -> Optional[str]:
    try:
        import subprocess
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except Exception:  # noqa: BLE001
        return None


def _progress(total: int, disable: bool):
    try:
        from tqdm import tqdm
        return tqdm(total=total, disable=disable, dynamic_ncols=True, file=sys.stderr)
    except ImportError:
        class _Bar:  # tqdm missing: a line per step
            def __init__(self):
                self.n = 0

            def set_postfix_str(self, s):
                if not disable:
                    print(f"[{self.n + 1}/{total}] {s}", file=sys.stderr, flush=True)

            def update(self, k=1):
                self.n += k

            def close(self):
                pass
        return _Bar()


def summary_table(results: List[dict]) -> str:
    rows = ["| model | dtype | mode | res | batch | img/s | peak GB |", "|---|---|---|---|---|---|---|"]
    for r in results:
        ips = r["img_per_s"] if r["status"] == "ok" else r["status"]
        mem = r.get("peak_mem_gb")
        rows.append(f"| {r['label']} | {r['dtype']} | {r['mode']} | {r['resolution']} | {r['batch_size']} | "
                    f"{ips} | {'-' if mem is None else mem} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------- plot
def plot(results: List[dict], path: str, title: str = "") -> None:
    """Fig. 1 of the Vim paper, for every (dtype, mode): img/s (left) and peak memory (right) vs resolution."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = [(d, m) for d in DTYPES for m in MODES
              if any(r["dtype"] == d and r["mode"] == m for r in results)]
    if not combos:
        raise ValueError("no results to plot")
    labels = sorted({r["label"] for r in results})
    style = {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(labels):
        style[label] = dict(color=colors[i % len(colors)], marker="o" if label.startswith("Vim") else "s",
                            linestyle="-" if label.startswith("Vim") else ("--" if "naive" in label else ":"))
    fig, axes = plt.subplots(len(combos), 2, figsize=(12, 4 * len(combos)), squeeze=False)
    for row, (dtype, mode) in enumerate(combos):
        ax_speed, ax_mem = axes[row]
        for label in labels:
            rs = sorted((r for r in results if r["label"] == label and r["dtype"] == dtype and r["mode"] == mode),
                        key=lambda r: r["resolution"])
            if not rs:
                continue
            ok = [r for r in rs if r["status"] == "ok"]
            ax_speed.plot([r["resolution"] for r in ok], [r["img_per_s"] for r in ok], label=label, **style[label])
            if ok and ok[0].get("peak_mem_gb") is not None:
                ax_mem.plot([r["resolution"] for r in ok], [r["peak_mem_gb"] for r in ok], label=label,
                            **style[label])
            for r in rs:
                if r["status"] == "OOM":
                    for ax in (ax_speed, ax_mem):
                        ax.annotate("OOM", (r["resolution"], 1), xycoords=("data", "axes fraction"),
                                    xytext=(0, -12), textcoords="offset points", ha="center", fontsize=7,
                                    color=style[label]["color"])
        resolutions = sorted({r["resolution"] for r in results})
        for ax, ylabel in ((ax_speed, "images / s (log)"), (ax_mem, "peak GPU memory (GB)")):
            ax.set_xticks(resolutions)
            ax.set_xlabel("resolution (px)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.set_title(f"{dtype}{' autocast' if dtype != 'fp32' else ''}, "
                         f"{'inference' if mode == 'infer' else 'training step'}")
        ax_speed.set_yscale("log")
        batch = sorted({(r["resolution"], r["batch_size"]) for r in results if r["dtype"] == dtype
                        and r["mode"] == mode})
        ax_mem.text(0.01, 0.98, "batch: " + ", ".join(f"{res}:{b}" for res, b in batch), transform=ax_mem.transAxes,
                    fontsize=7, va="top")
        ax_speed.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97) if title else None)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS,
                   help="backbones to time (ignored with --full)")
    p.add_argument("--full", choices=sorted(FULL_TASKS),
                   help="time the whole detector / segmentor of --config (Vim backbone, each scan backend)")
    p.add_argument("--config", help="with --full: the model config (default: " +
                   ", ".join(f"{t} {c}" for t, (_, c) in FULL_TASKS.items()) + ")")
    p.add_argument("--cfg-options", nargs="+", action=DictAction or "store", metavar="KEY=VALUE",
                   help="with --full: override config keys, e.g. model.backbone.drop_path_rate=0.0")
    p.add_argument("--tiny", action="store_true",
                   help=f"with --full: backbone {TINY_ARCH}, necks/heads {TINY_CHANNELS} wide (smoke tests)")
    p.add_argument("--resolutions", nargs="+", type=int, default=list(DEFAULT_RESOLUTIONS))
    p.add_argument("--batch-sizes", nargs="+", metavar="[RES:]BS",
                   help=f"inference batch per resolution, e.g. 224:128 1248:8, or one number for all "
                        f"(default GPU {DEFAULT_GPU_BATCH}, CPU {DEFAULT_CPU_BATCH})")
    p.add_argument("--train-batch-sizes", nargs="+", metavar="[RES:]BS",
                   help="training-step batch (default: half the inference batch)")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES),
                   help="fp32, or bf16/fp16 autocast (weights stay fp32)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--vim-backends", nargs="+", default=["mamba_ssm", "fused"], choices=VIM_BACKENDS,
                   help="scan backends for Vim; unavailable ones are skipped with a note. If none is "
                        "available, 'reference' is used")
    p.add_argument("--reference-max-res", type=int, default=0,
                   help="skip the (slow) reference backend above this resolution; 0 = never skip")
    p.add_argument("--attn", nargs="+", default=list(ATTN_IMPLS), choices=ATTN_IMPLS,
                   help="DeiT attention: naive (softmax(qk^T)v, the paper's baseline) and/or sdpa")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 3 on GPU, 1 on CPU)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls in fp32 runs (off by default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", help="write results JSON here")
    p.add_argument("--plot", help="write the Fig. 1 style PNG here")
    p.add_argument("--plot-only", metavar="JSON", help="only redraw --plot from an earlier results JSON")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--cuda-graph", action="store_true",
                   help="inference replayed from a CUDA graph (backbones only): the GPU's time without the host's "
                        "launch overhead")
    p.add_argument("--scan-recompute", action=argparse.BooleanOptionalAction, default=True,
                   help="Vim built with scan_recompute (the default; fused backend: the backward recomputes the "
                        "conv output, dt and B, C; less memory in training). --no-scan-recompute: the block keeps "
                        "them (rows labelled 'stored'); with --full use --cfg-options "
                        "model.backbone.scan_recompute=False")
    p.add_argument("--cuda-graph-train", action="store_true",
                   help="training steps (forward, backward) replayed from a CUDA graph too (backbones only): the "
                        "GPU's time of a step, where eager training waits for the host")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.plot_only:
        if not args.plot:
            raise SystemExit("--plot-only needs --plot OUT.png")
        with open(args.plot_only) as f:
            data = json.load(f)
        plot(data["results"], args.plot, _title(data["environment"]))
        print(f"wrote {args.plot}")
        return data
    if (args.cuda_graph or args.cuda_graph_train) and args.full:
        raise SystemExit("--cuda-graph and --cuda-graph-train time backbones only, not --full det|seg")
    if not args.scan_recompute and args.full:
        raise SystemExit("--no-scan-recompute builds backbones; with --full use --cfg-options "
                         "model.backbone.scan_recompute=False")

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False; use --device cpu")
    if device.type == "cuda" and device.index is None:  # streams and graphs need the index ("cuda" -> "cuda:0")
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 1)

    if not args.full and (args.config or args.cfg_options or args.tiny):
        raise SystemExit("--config, --cfg-options and --tiny go with --full det|seg")
    full_cfg = load_full_config(args.full, args.config, args.cfg_options, args.tiny) if args.full else None

    notes: List[str] = []
    if (args.full or any(m in VIM_MODELS for m in args.models)) and not any(
            vim_backend_note(b, device) is None for b in args.vim_backends):
        notes.append(f"none of the Vim backends {args.vim_backends} runs on {device}: using 'reference'")
        args.vim_backends = ["reference"]
    cfgs = plan(args, device, notes, full_cfg)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    env = environment(device)
    # what a --full run does not read stays out of its settings
    unused = ("plot_only", "no_progress") + (("models", "attn") if args.full else ("config", "cfg_options", "tiny"))
    settings = {k: v for k, v in vars(args).items() if k not in unused}
    settings.update(warmup=warmup, cmd=" ".join([os.path.basename(sys.executable), *sys.argv]))

    results = []
    bar = _progress(len(cfgs), args.no_progress)
    t0 = time.time()
    for cfg in cfgs:
        bar.set_postfix_str(f"{cfg['label']} {cfg['dtype']} {cfg['mode']} {cfg['resolution']}px bs{cfg['batch_size']}")
        rec = run_one(cfg, device, warmup, args.iters, full_cfg, args.cuda_graph, args.cuda_graph_train)
        results.append(rec)
        bar.update(1)
        if args.out:  # rewritten after every setting: a sweep cut short by a time limit keeps its numbers
            _write_json(args.out, dict(environment=env, settings=settings, notes=notes, complete=False,
                                       wall_s=round(time.time() - t0, 1), results=results))
        if rec["status"] == "error":
            print(f"\nerror: {cfg['label']} {cfg['dtype']} {cfg['mode']} {cfg['resolution']}: {rec['error']}",
                  file=sys.stderr)
    bar.close()
    data = dict(environment=env, settings=settings, notes=notes, complete=True, wall_s=round(time.time() - t0, 1),
                results=results)
    print(summary_table(results))
    if args.out:
        _write_json(args.out, data)
        print(f"wrote {args.out}")
    if args.plot:
        plot(results, args.plot, _title(env))
        print(f"wrote {args.plot}")
    return data


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _title(env: dict) -> str:
    return f"{env.get('device_name')} · torch {env.get('torch')} · mamba-ssm {env.get('mamba_ssm') or '-'}"


if __name__ == "__main__":
    main()
