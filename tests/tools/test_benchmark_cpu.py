"""CPU smoke tests of tools/benchmark.py and tools/scan_benchmark.py (the CI stand-in for the GPU runs)."""
import json

import pytest
import torch
from tests.helpers import load_tool  # noqa: E402



def test_benchmark_cpu_smoke(tmp_path, one_thread):
    bench = load_tool("benchmark")
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    bench.main(["--device", "cpu", "--resolutions", "32", "--iters", "2", "--warmup", "0",
                "--models", "vim_tiny", "deit_tiny", "--dtypes", "fp32", "--out", str(out), "--plot", str(png),
                "--no-progress"])
    data = json.loads(out.read_text())
    assert {"environment", "settings", "notes", "results"} <= set(data)
    assert {"device", "device_name", "torch", "timm"} <= set(data["environment"])
    # the kernels' settings
    assert {"block_e", "backward", "conv_tile", "inference_tail"} <= set(data["environment"]["fused"])
    assert data["settings"]["resolutions"] == [32] and data["settings"]["iters"] == 2
    # no fast Vim backend on CPU: announced, and the reference used instead
    assert any("reference" in n for n in data["notes"]), data["notes"]
    labels = {r["label"] for r in data["results"]}
    assert labels == {"Vim-Ti (reference)", "DeiT-Ti (naive)", "DeiT-Ti (sdpa)"}
    assert len(data["results"]) == 3 * 2  # x (infer, train)
    for r in data["results"]:
        assert r["status"] == "ok", r
        assert r["img_per_s"] > 0 and r["ms_per_iter"] > 0
        assert r["host_ms_per_iter"] == r["ms_per_iter"]  # on CPU the host time is the step time
        assert {"model", "impl", "dtype", "mode", "resolution", "tokens", "batch_size", "peak_mem_gb"} <= set(r)
    assert png.stat().st_size > 0


def test_deit_attention_switch():
    bench = load_tool("benchmark")
    model = bench.build_deit("deit_tiny", 32, "naive")
    assert all(not m.fused_attn for m in model.modules() if hasattr(m, "fused_attn"))
    bench.set_deit_attention(model, "sdpa")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        fused = model.forward_features(x)
        bench.set_deit_attention(model, "naive")
        naive = model.forward_features(x)
    torch.testing.assert_close(fused, naive, rtol=1e-4, atol=1e-5)


def test_batch_size_spec():
    bench = load_tool("benchmark")
    assert bench.parse_batch_sizes(["224:64", "1248:2"], [224, 512, 1248], {224: 128, 512: 32}, 8) == \
        {224: 64, 512: 32, 1248: 2}
    assert bench.parse_batch_sizes(["4"], [224, 512], {}, 8) == {224: 4, 512: 4}
    with pytest.raises(ValueError, match="batch sizes must be >= 1"):
        bench.parse_batch_sizes(["224:0"], [224], {}, 8)


def test_scan_benchmark_cpu_smoke(tmp_path, one_thread):
    scan_bench = load_tool("scan_benchmark")
    out = tmp_path / "scan.json"
    data = scan_bench.main(["--device", "cpu", "--lengths", "8", "--batch", "1", "--channels", "32",
                            "--dtypes", "fp32", "--iters", "1", "--warmup", "0", "--out", str(out)])
    assert json.loads(out.read_text())["results"] == data["results"]
    ok = [(r["level"], r["backend"], r["pass_"]) for r in data["results"] if r["status"] == "ok"]
    assert ("scan", "reference", "fwd+bwd") in ok and ("mixer", "reference", "fwd") in ok
    assert any("fused" in n for n in data["notes"])  # skipped on CPU, with a note


@pytest.mark.parametrize("task, label", [("det", "Vim-32x4 CascadeRCNN (reference)"),
                                         ("seg", "Vim-32x4 UPerHead (reference)")])
def test_benchmark_full_model_cpu_smoke(task, label, tmp_path, one_thread):
    """``--full det|seg`` with the default paper configs shrunk by ``--tiny``: predict and a training step."""
    pytest.importorskip("mmdet" if task == "det" else "mmseg")
    if task == "det":
        pytest.importorskip("mmcv.ops", reason="mmcv built with ops (RoIAlign, nms) is needed by mmdet's heads")
    bench = load_tool("benchmark")
    out = tmp_path / f"{task}.json"
    bench.main(["--full", task, "--tiny", "--device", "cpu", "--resolutions", "64", "--iters", "1", "--warmup", "0",
                "--dtypes", "fp32", "--cfg-options", "model.backbone.drop_path_rate=0.0", "--out", str(out),
                "--no-progress"])
    data = json.loads(out.read_text())
    assert data["complete"] and data["settings"]["full"] == task and data["settings"]["tiny"]
    assert data["settings"]["cfg_options"] == {"model.backbone.drop_path_rate": 0.0}
    assert {"mmcv", "mmdet", "mmseg"} <= set(data["environment"])
    assert [(r["mode"], r["label"]) for r in data["results"]] == [("infer", label), ("train", label)]
    for r in data["results"]:
        assert r["status"] == "ok", r
        assert r["family"] == task and r["resolution"] == 64 and r["input_size"] == [64, 64]
        assert r["tokens"] == 16 and r["img_per_s"] > 0 and r["batch_size"] == 2
        assert 0 < r["params_m"] < 5  # the tiny model, not the configured Vim-Ti


def test_benchmark_full_flags_need_full():
    bench = load_tool("benchmark")
    with pytest.raises(SystemExit, match="go with --full"):
        bench.main(["--device", "cpu", "--tiny"])


def _graph_bench(tmp_path, modes, flag):
    """Vim-Ti (fused) and DeiT-Ti (SDPA) at 64 px in ``modes`` with the graph ``flag``: the result records."""
    out = tmp_path / "bench.json"
    load_tool("benchmark").main(["--device", "cuda", "--resolutions", "64", "--iters", "3", "--models", "vim_tiny",
                                 "deit_tiny", "--dtypes", "bf16", "--modes", *modes, "--vim-backends", "fused",
                                 "--attn", "sdpa", flag, "--out", str(out), "--no-progress"])
    return json.loads(out.read_text())["results"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_benchmark_cuda_graph(tmp_path):
    results = _graph_bench(tmp_path, ["infer", "train"], "--cuda-graph")
    assert len(results) == 4
    for r in results:
        assert r["status"] == "ok" and r["img_per_s"] > 0, r
        assert r["cuda_graph"] == (r["mode"] == "infer"), r  # training steps are never graphed
        if r["cuda_graph"]:
            assert r["host_ms_per_iter"] < r["ms_per_iter"]  # one replay a step: the host no longer sets the pace


def test_benchmark_cuda_graph_rejects_full():
    bench = load_tool("benchmark")
    for flag in ("--cuda-graph", "--cuda-graph-train"):
        with pytest.raises(SystemExit, match="backbones only"):
            bench.main(["--full", "det", flag, "--device", "cpu"])


def test_benchmark_scan_recompute(tmp_path, one_thread, monkeypatch):
    # the Vim rows are built with scan_recompute (the model's default) unless --no-scan-recompute, whose rows say so;
    # DeiT's are not touched
    bench = load_tool("benchmark")
    built = []
    real = bench.build_vim
    monkeypatch.setattr(bench, "build_vim", lambda *a: built.append(a) or real(*a))
    labels = {}
    for flag, recompute in (([], True), (["--no-scan-recompute"], False)):
        out = tmp_path / f"bench{recompute}.json"
        bench.main(["--device", "cpu", "--resolutions", "32", "--iters", "1", "--warmup", "0", "--models",
                    "vim_tiny", "deit_tiny", "--attn", "sdpa", "--dtypes", "fp32", "--modes", "train", *flag,
                    "--out", str(out), "--no-progress"])
        data = json.loads(out.read_text())
        assert data["settings"]["scan_recompute"] is recompute and built.pop() == ("vim_tiny", 32, "reference",
                                                                                   recompute)
        rows = {r["label"]: r for r in data["results"]}
        labels[recompute] = set(rows)
        assert "scan_recompute" not in rows["DeiT-Ti (sdpa)"]
    assert labels == {True: {"Vim-Ti (reference)", "DeiT-Ti (sdpa)"},
                      False: {"Vim-Ti (reference) stored", "DeiT-Ti (sdpa)"}}
    with pytest.raises(SystemExit, match="cfg-options model.backbone.scan_recompute=False"):
        bench.main(["--full", "det", "--no-scan-recompute", "--device", "cpu"])


def test_graphed_mode():
    bench = load_tool("benchmark")
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert bench.graphed_mode("infer", cuda, True, False) and not bench.graphed_mode("train", cuda, True, False)
    assert bench.graphed_mode("train", cuda, False, True) and not bench.graphed_mode("infer", cuda, False, True)
    assert not bench.graphed_mode("infer", cpu, True, True) and not bench.graphed_mode("train", cpu, True, True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_benchmark_cuda_graph_train(tmp_path):
    results = _graph_bench(tmp_path, ["train"], "--cuda-graph-train")
    assert len(results) == 2
    for r in results:
        assert r["status"] == "ok" and r["img_per_s"] > 0 and r["cuda_graph"], r
        assert r["host_ms_per_iter"] < r["ms_per_iter"]


class _Doubler(torch.nn.Module):
    """forward_features makes one temporary the size of its input."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward_features(self, x):
        return (x * self.scale).sum(dim=(1, 2, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_graph_peak_memory_counts_a_step_temporaries(mode):
    # a replay allocates nothing: the peak must come from the warm-up and the capture, where the step's
    # temporaries are made (taken after the capture, it would be the input alone)
    bench = load_tool("benchmark")
    x = torch.ones(64, 4, 1024, 1024, device="cuda")  # 1 GiB
    _, peak, _, _ = bench.time_model(_Doubler().cuda(), x, mode, None, 1, 2, cuda_graph=True, cuda_graph_train=True)
    assert peak >= 1.99, peak  # the input and its scaled copy


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_graphed_training_step_gives_eager_gradients(backend):
    # what --cuda-graph-train replays: forward and backward captured once (bf16 autocast without its weight
    # cache), against the same step run eagerly
    bench = load_tool("benchmark")
    torch.manual_seed(0)
    model = bench.build_vim("vim_tiny", 64, backend).cuda().train()
    from vim_backbone.layers.drop_path import DropPath
    for m in model.modules():  # no random drop path: the two runs must see the same function
        if isinstance(m, DropPath):
            m.p = 0.0
    x = torch.randn(2, 3, 64, 64, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            out = model.forward_features(x)
        out.float().mean().backward()

    step()
    eager = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert len(eager) > 10
    replay = bench.cuda_graphed(step, x.device)  # its warm-up and capture accumulate into .grad
    for p in model.parameters():
        if p.grad is not None:
            p.grad.zero_()
    replay()
    torch.cuda.synchronize()
    # NOTE: not to the bit: the fused backward sums some gradients with atomics, and an fp32 difference in
    # the last place can turn a bf16 rounding downstream; a replay that missed or reused stale work is off
    # by far more
    params = dict(model.named_parameters())
    errs = {name: ((params[name].grad - g).abs().max() / g.abs().max().clamp(min=1e-12)).item()
            for name, g in eager.items()}
    worst = max(errs, key=errs.get)
    assert errs[worst] < 2e-2, (worst, errs[worst])



def test_host_profile_cpu():
    tool = load_tool("host_profile")
    res = tool.main(["--device", "cpu", "--backend", "reference", "--img-size", "32", "--batch", "1", "--depth", "2",
                     "--steps", "1", "--top", "5"])
    assert len(res["profiled_ms"]) == 1 and len(res["plain_ms"]) == 5
    assert all(t > 0 for t in res["plain_ms"])
    assert "run_backward" in res["profile"]  # the training step's backward shows up in the profile


def test_scan_benchmark_fused_inputs_match_the_op_layout(monkeypatch):
    # the fused scan stage is timed on B and C as the op lays them out: views of one (2, B, L, 2N) buffer
    # (fp32 by default, the input dtype with VIM_FUSED_BC=input), u and dt channels-last
    scan_bench = load_tool("scan_benchmark")
    i = scan_bench.scan_inputs(2, 8, 4, 5, torch.bfloat16, torch.device("cpu"), requires_grad=True)
    monkeypatch.delenv("VIM_FUSED_BC", raising=False)
    f = scan_bench.fused_scan_inputs(i)
    for name, ref in (("Bm", i["B"]), ("Cm", i["C"])):
        t = f[name]
        assert t.shape == (2, 2, 4, 5) and t.dtype == torch.float32 and t.stride()[2:] == (1, 8)
        torch.testing.assert_close(t, torch.stack([ref, ref]).detach().float())
        assert t.requires_grad
    assert f["Cm"].data_ptr() == f["Bm"].data_ptr() + 4 * 4  # one buffer, C right after B
    assert f["u"].stride()[2:] == (1, 8) and f["dt"].stride()[2:] == (1, 8)
    monkeypatch.setenv("VIM_FUSED_BC", "input")
    assert scan_bench.fused_scan_inputs(i)["Bm"].dtype == torch.bfloat16


def test_small_batch_benchmark_cpu_smoke(one_thread):
    rows = load_tool("small_batch_benchmark").main(["--device", "cpu", "--backends", "reference", "--resolutions",
                                                    "32", "--batches", "1", "2", "--warmup", "1", "--iters", "1"])
    assert [(r["batch"], r["backend"]) for r in rows] == [(1, "reference"), (2, "reference")]
    assert all(r["infer"] > 0 and r["train"] > 0 and "infer_graph" not in r for r in rows)


def test_kernel_profile_cpu():
    tool = load_tool("kernel_profile")
    res = tool.main(["--device", "cpu", "--backend", "reference", "--img-size", "32", "--batch", "1", "--depth", "2",
                     "--steps", "1", "--top", "5"])
    assert res["total_ms"] > 0 and res["rows"]
    assert abs(sum(r["ms"] for r in res["rows"]) - res["total_ms"]) < 1e-6 * max(1.0, res["total_ms"])
    assert [r["ms"] for r in res["rows"]] == sorted((r["ms"] for r in res["rows"]), reverse=True)
    assert any("linear" in r["name"] or "addmm" in r["name"] or "mm" in r["name"] for r in res["rows"])
