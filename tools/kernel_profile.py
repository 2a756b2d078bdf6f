"""Device time by kernel in one Vim backbone forward (inference), from the PyTorch profiler: what bounds it.

    python3 tools/kernel_profile.py --img-size 1024 --batch 64                       # CUDA, fused, bf16 autocast
    python3 tools/kernel_profile.py --device cpu --backend reference --img-size 32 --batch 1 --depth 2

On CUDA the rows are kernels (their own device time, averaged over the profiled forwards); on a CPU the rows are
operators (their own CPU time). Each row: ms a forward, share of the total, launches a forward, name.
"""
import argparse
import contextlib
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _own_time_us(event, cuda: bool) -> float:
    if cuda:  # the attribute's name changed across torch versions
        return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)
    return event.self_cpu_time_total


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vim_tiny_patch16_224")
    p.add_argument("--img-size", type=int, default=1024)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--backend", default="fused")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16",
                   help="autocast dtype on CUDA (weights stay fp32); ignored on a CPU")
    p.add_argument("--depth", type=int, default=None, help="blocks (default: the model's)")
    p.add_argument("--steps", type=int, default=3, help="profiled forwards (after 3 unprofiled ones)")
    p.add_argument("--top", type=int, default=15, help="rows, by own time")
    args = p.parse_args(argv)
    from vim_backbone import create_model

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    extra = {} if args.depth is None else dict(depth=args.depth)
    model = create_model(args.model, num_classes=0, img_size=args.img_size, scan_backend=args.backend,
                         **extra).to(device).eval()
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16, fp32=None)[args.dtype]
    amp = torch.autocast("cuda", dtype=dtype) if cuda and dtype is not None else contextlib.nullcontext()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def forward():
        with torch.inference_mode(), amp:
            model.forward_features(x)

    for _ in range(3):
        forward()
    sync()
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            forward()
        sync()
    rows = []
    for event in prof.key_averages():
        own = _own_time_us(event, cuda)
        if own > 0:
            rows.append((own / args.steps / 1000, event.count / args.steps, event.key))
    rows.sort(key=lambda r: -r[0])
    total = sum(r[0] for r in rows)
    print(f"{args.model} {args.img_size}px batch {args.batch}, backend {args.backend}, {args.dtype if cuda else 'fp32'}, "
          f"{device}: {total:.3f} ms {'on the device' if cuda else 'of operator time'} a forward")
    for ms, count, name in rows[:args.top]:
        print(f"{ms:9.3f} ms {100 * ms / total:5.1f}% x{count:5.0f}  {name[:100]}")
    return dict(total_ms=total, rows=[dict(ms=ms, launches=count, name=name) for ms, count, name in rows])


if __name__ == "__main__":
    main()
