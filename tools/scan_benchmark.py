"""Time the bidirectional selective scan alone, per backend: forward and forward + backward.

Two levels, both at Vim-Ti's 1024² shape by default (L = 4097 tokens, E = 384 channels, batch 16, N = 16):

* ``scan``  - the official Vim composition of the two directions on precomputed inputs:
  ``y = scan(u, dt, A, B, C, D, z) + scan(flip(u), ...).flip()``, with the backend's
  ``selective_scan`` (``reference`` = PyTorch, ``mamba_ssm`` = the stock CUDA kernel, twice); for
  ``fused`` its scan stage alone (``bidirectional_selective_scan``: one launch, both directions, gate).
* ``mixer`` - the whole bidirectional mixer (``BiMambaMixer``: in_proj, both convs, x/dt projections,
  both scans, gate, out_proj) on (B, L, D) tokens with D = E / 2; here ``fused`` (one Triton launch for
  both directions) competes too.

    python tools/scan_benchmark.py                          # every available backend, fp32 + bf16
    python tools/scan_benchmark.py --backends mamba_ssm fused --lengths 197 1025 4097 6085
    python tools/scan_benchmark.py --device cpu --lengths 64 --batch 2 --iters 2   # smoke test

Unavailable backends are skipped with a note; ``--reference-max-len`` keeps the slow reference
off the long sequences. ``--out`` writes JSON (device, versions, settings, every number).
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
from typing import Callable, List, Optional

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from vim_backbone.layers import BiMambaMixer  # noqa: E402
from vim_backbone.ops import BACKENDS, get_backend, resolve_backend  # noqa: E402
from vim_backbone.ops.fused_bimamba import fused_settings  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def backend_note(name: str, device: torch.device, level: str) -> Optional[str]:
    """None when ``name`` can run ``level`` on ``device``, else the reason."""
    try:
        resolve_backend(name, device)
    except (ImportError, ValueError) as e:
        return str(e)
    if name == "fused" and device.type != "cuda":
        return "fused is only timed on CUDA"
    return None


def scan_inputs(batch: int, channels: int, state: int, length: int, dtype: torch.dtype, device: torch.device,
                requires_grad: bool) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)

    def t(*shape, scale=1.0, shift=0.0, dt=dtype):
        x = (torch.randn(*shape, generator=g) * scale + shift).to(device=device, dtype=dt)
        return x.requires_grad_(requires_grad)

    return dict(
        u=t(batch, channels, length), delta=t(batch, channels, length, scale=0.5, shift=-4.0),
        A=(-torch.exp(torch.randn(channels, state, generator=g) * 0.5)).to(device).requires_grad_(requires_grad),
        B=t(batch, state, length), C=t(batch, state, length), D=t(channels, dt=torch.float32),
        z=t(batch, channels, length), delta_bias=t(channels, scale=0.1, dt=torch.float32),
    )


def bidirectional_scan(scan: Callable, i: dict) -> torch.Tensor:
    """Official Vim composition: two scans, the second on flipped sequences (own A/D shared here)."""
    fwd = scan(i["u"], i["delta"], i["A"], i["B"], i["C"], i["D"], z=i["z"], delta_bias=i["delta_bias"],
               delta_softplus=True)
    bwd = scan(i["u"].flip(-1), i["delta"].flip(-1), i["A"], i["B"].flip(-1), i["C"].flip(-1), i["D"],
               z=i["z"].flip(-1), delta_bias=i["delta_bias"], delta_softplus=True)
    return (fwd + bwd.flip(-1)) / 2


def fused_scan_inputs(i: dict) -> dict:
    """The inputs of ``bidirectional_scan`` for the fused scan stage, laid out as the fused op feeds it:
    both directions stacked (2, ...); u, dt channels-last; B and C (2, B, N, L) views of one (2, B, L, 2N)
    buffer, each token's 2N values contiguous, in the dtype the op would read them in
    (:func:`~vim_backbone.ops.fused_bimamba.bc_dtype`: fp32 when a backward follows, for inference the
    input dtype with the Gluon walk), as the op's copy of the x_proj columns. Direction 1 gets the same values over the original order.

    NOTE: up to session 5 B and C were passed here as the stock kernels take them, (2, B, N, L) with L
    contiguous in the activation dtype, which the op never produces: every token's B_t was 16 strided
    16-bit loads. The stock path still gets its own layout (``scan_inputs``)."""
    from vim_backbone.ops.fused_bimamba import bc_dtype

    def pair(t):
        return torch.stack([t, t]).detach()

    def cl(t):  # (2, B, E, L) values, (2, B, L, E) in memory
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)

    n = i["B"].shape[1]
    req = i["u"].requires_grad
    bc = pair(torch.cat([i["B"], i["C"]], 1))  # (2, B, 2N, L)
    bc = cl(bc.to(torch.float32 if bc_dtype(grad=req) == "float32" else bc.dtype))
    out = dict(u=cl(pair(i["u"])), dt=cl(pair(i["delta"])), A=pair(i["A"]).float(), Bm=bc[:, :, :n], Cm=bc[:, :, n:],
               D=pair(i["D"]), z=i["z"].detach(), dt_bias=pair(i["delta_bias"]))
    for k, v in out.items():
        if k not in ("Bm", "Cm"):
            v.requires_grad_(req)
    if req:  # B and C: views of one leaf
        bc.requires_grad_(True)
        out["Bm"], out["Cm"] = bc[:, :, :n], bc[:, :, n:]
    return out


def time_fn(fn: Callable, device: torch.device, warmup: int, iters: int) -> float:
    """Milliseconds per call."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) * 1000 / iters


def run_case(level: str, backend: str, dtype_name: str, pass_: str, length: int, args, device) -> dict:
    rec = dict(level=level, backend=backend, dtype=dtype_name, pass_=pass_, length=length, batch=args.batch,
               channels=args.channels, d_state=args.d_state)
    dtype = DTYPES[dtype_name]
    train = pass_ == "fwd+bwd"
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if level == "scan":
            inputs = scan_inputs(args.batch, args.channels, args.d_state, length, dtype, device, train)
            grad = torch.randn(args.batch, args.channels, length, device=device, dtype=dtype)
            if backend == "fused":
                from vim_backbone.ops.fused_bimamba import bidirectional_selective_scan
                inputs = fused_scan_inputs(inputs)

                def run():
                    return bidirectional_selective_scan(**inputs)
            else:
                scan = get_backend(backend, device).selective_scan

                def run():
                    return bidirectional_scan(scan, inputs)

            def step():
                if train:
                    torch.autograd.grad(run(), [v for v in inputs.values()], grad)
                else:
                    with torch.no_grad():
                        run()
        else:
            mixer = BiMambaMixer(args.channels // 2, d_state=args.d_state, backend=backend).to(device)
            hidden = torch.randn(args.batch, length, args.channels // 2, device=device, dtype=dtype,
                                 requires_grad=train)
            if dtype != torch.float32:  # as under autocast: weights fp32, activations low precision
                mixer = mixer.to(dtype)
                for name in ("A_log", "A_b_log", "D", "D_b"):
                    getattr(mixer, name).data = getattr(mixer, name).data.float()
            grad = torch.randn_like(hidden)

            def step():
                if train:
                    out = mixer(hidden)
                    torch.autograd.grad(out, [hidden, *mixer.parameters()], grad)
                else:
                    with torch.no_grad():
                        mixer(hidden)
        ms = time_fn(step, device, args.warmup, args.iters)
        rec.update(status="ok", ms=round(ms, 3))
        if device.type == "cuda":
            rec["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
    except Exception as e:  # noqa: BLE001 - record and go on
        oom = "out of memory" in str(e).lower()
        rec.update(status="OOM" if oom else "error", error=None if oom else f"{type(e).__name__}: {e}"[:400])
    return rec


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--levels", nargs="+", default=["scan", "mixer"], choices=["scan", "mixer"])
    p.add_argument("--lengths", nargs="+", type=int, default=[4097])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channels", type=int, default=384, help="E (= 2 D); 384 is Vim-Ti, 768 Vim-S")
    p.add_argument("--d-state", type=int, default=16)
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    p.add_argument("--passes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    p.add_argument("--reference-max-len", type=int, default=0, help="skip reference above this L (0: never)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--out", help="JSON file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False

    notes: List[str] = []
    results = []
    for level in args.levels:
        for backend in args.backends:
            note = backend_note(backend, device, level)
            if note:
                notes.append(f"{level}/{backend} skipped: {note}")
                print(f"note: {notes[-1]}", file=sys.stderr)
                continue
            for length in args.lengths:
                if backend == "reference" and args.reference_max_len and length > args.reference_max_len:
                    notes.append(f"{level}/reference at L={length} skipped (--reference-max-len)")
                    continue
                for dtype in args.dtypes:
                    for pass_ in args.passes:
                        rec = run_case(level, backend, dtype, pass_, length, args, device)
                        results.append(rec)
                        value = f"{rec['ms']:.3f} ms" if rec["status"] == "ok" else rec["status"]
                        print(f"{level:5s} {backend:9s} {dtype:4s} {pass_:7s} L={length:5d} B={args.batch} "
                              f"E={args.channels}: {value}" + (f"  ({rec.get('error')})" if rec.get("error") else ""),
                              flush=True)
    env = dict(device=str(device), torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
               device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               fused=fused_settings())
    try:
        from importlib.metadata import version
        env["mamba_ssm"] = version("mamba-ssm")
    except Exception:  # noqa: BLE001
        env["mamba_ssm"] = None
    data = dict(environment=env, settings=vars(args), notes=notes, results=results)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(data, f, indent=1)
        print(f"wrote {args.out}")
    return data


if __name__ == "__main__":
    main()
