"""Vim backbone img/s at small batches, one backend after another in one process: what the automatic scan
backend choice (``vim_backbone.ops.FUSED_MIN_BATCH``) rests on.

    python tools/small_batch_benchmark.py                   # CUDA: Vim-Ti, 224/512/1024, batches 1 2 4 8
    python tools/small_batch_benchmark.py --device cpu --backends reference --resolutions 32 --batches 1 2

Each row: inference, inference replayed from a CUDA graph (CUDA only) and a training step (forward +
backward of the features' mean), bf16 autocast on CUDA, fp32 on CPU; timings from ``tools/benchmark.py``'s
``time_model``.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as bm  # noqa: E402


def main(argv=None) -> list:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="vim_tiny", choices=sorted(bm.VIM_MODELS))
    p.add_argument("--backends", nargs="+", default=["mamba_ssm", "fused"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[224, 512, 1024])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    modes = [("infer", False)] + ([("infer", True)] if device.type == "cuda" else []) + [("train", False)]
    rows = []
    for res in args.resolutions:
        for backend in args.backends:
            model = bm.build_vim(args.model, res, backend).to(device)
            for batch in args.batches:
                x = torch.randn(batch, 3, res, res, device=device)
                row = dict(resolution=res, backend=backend, batch=batch)
                for mode, graph in modes:
                    sec = bm.time_model(model, x, mode, amp, args.warmup, args.iters, cuda_graph=graph)[0]
                    row[mode + ("_graph" if graph else "")] = round(batch / sec, 1)
                rows.append(row)
                print(f"{res} {backend:9s} batch {batch}: "
                      + ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("resolution", "backend", "batch")),
                      flush=True)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


if __name__ == "__main__":
    main()
