"""Where the host's time goes in one step of a Vim backbone: cProfile over a few steps, each enqueued on an
idle device, then the plain enqueue times without the profiler.

    python3 tools/host_profile.py --img-size 1024 --batch 8 --mode train             # CUDA, fused backend
    python3 tools/host_profile.py --device cpu --backend reference --img-size 32 --batch 1 --depth 2 --steps 1

Training = forward under bf16 autocast (on CUDA) + backward of the features' mean, as tools/benchmark.py.
"""
import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vim_tiny_patch16_224")
    p.add_argument("--img-size", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--backend", default="fused")
    p.add_argument("--device", default="cuda")
    p.add_argument("--depth", type=int, default=None, help="blocks (default: the model's)")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (and 5 unprofiled ones)")
    p.add_argument("--top", type=int, default=35, help="rows of the profile, by own time")
    args = p.parse_args(argv)
    from vim_backbone import create_model

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    extra = {} if args.depth is None else dict(depth=args.depth)
    model = create_model(args.model, num_classes=0, img_size=args.img_size, scan_backend=args.backend,
                         **extra).to(device)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step():
        if args.mode == "train":
            with amp:
                out = model.forward_features(x)
            out.float().mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), amp:
                model.forward_features(x)

    model.train(args.mode == "train")
    for _ in range(2):
        step()
    sync()
    prof = cProfile.Profile()
    profiled = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        prof.enable()
        step()
        prof.disable()
        profiled.append(round((time.perf_counter() - t0) * 1000, 1))
        sync()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(args.top)
    plain = []
    for _ in range(5):
        t0 = time.perf_counter()
        step()
        plain.append(round((time.perf_counter() - t0) * 1000, 1))
        sync()
    print(f"{args.model} {args.img_size}px batch {args.batch} {args.mode}, backend {args.backend}, {device}")
    print("host ms per step under cProfile:", profiled)
    print(text.getvalue())
    print("host ms per step without the profiler:", plain)
    return dict(profiled_ms=profiled, plain_ms=plain, profile=text.getvalue())


if __name__ == "__main__":
    main()
