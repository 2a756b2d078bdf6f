"""Sweep the fused backend's tile sizes and profile its kernels (CUDA only).

    python tools/fused_tile_sweep.py [--batch 16] [--channels 384] [--length 4097]

Prints ms per forward call for block_e x chunk, then torch-profiler tables of the forward and of
forward + backward, so the kernel that bounds the op is named.
"""
import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from vim_backbone.ops.fused_bimamba import bidirectional_scan_fused  # noqa: E402


def make_inputs(batch, channels, length, dtype, dt_rank=12, d_state=16, device="cuda"):
    g = torch.Generator(device=device).manual_seed(0)
    rnd = lambda *s, scale=0.1: (torch.randn(*s, device=device, generator=g) * scale).to(dtype)
    A = -torch.arange(1, d_state + 1, device=device, dtype=torch.float32).expand(channels, d_state).contiguous()
    ones = torch.ones(channels, device=device)
    return [rnd(batch, channels, length, scale=1.0), rnd(batch, channels, length, scale=1.0),
            rnd(channels, 4, scale=0.3), rnd(channels), rnd(channels, 4, scale=0.3), rnd(channels),
            rnd(dt_rank + 2 * d_state, channels), rnd(dt_rank + 2 * d_state, channels),
            rnd(channels, dt_rank, scale=0.3), rnd(channels, scale=0.5) - 4,
            rnd(channels, dt_rank, scale=0.3), rnd(channels, scale=0.5) - 4, A, A.clone(), ones, ones.clone(),
            dt_rank, d_state]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--length", type=int, default=4097)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    import triton.testing as tt
    inputs = make_inputs(args.batch, args.channels, args.length, torch.bfloat16)
    with torch.no_grad():
        for block_e, chunk in itertools.product((4, 8, 16, 32), (16, 32, 64, 128)):
            try:
                ms = f"{tt.do_bench(lambda: bidirectional_scan_fused(*inputs, block_e=block_e, chunk=chunk), warmup=5, rep=40):.3f}"
            except Exception as e:  # e.g. OutOfResources for the largest tiles
                ms = type(e).__name__
            print(f"block_e={block_e:3d} chunk={chunk:4d}: {ms} ms", flush=True)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                bidirectional_scan_fused(*inputs)
            torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=10))
    grad_inputs = [t.clone().requires_grad_() if isinstance(t, torch.Tensor) else t for t in inputs]
    out = bidirectional_scan_fused(*grad_inputs)
    grad = torch.randn_like(out)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            bidirectional_scan_fused(*grad_inputs).backward(grad)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))


if __name__ == "__main__":
    main()
