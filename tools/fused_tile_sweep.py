"""Sweep the fused backend's forward tiles and profile its kernels and a whole backbone (CUDA only).

    python tools/fused_tile_sweep.py [--batch 16] [--channels 384] [--length 4097]
    python tools/fused_tile_sweep.py --skip-sweep --model vim_tiny_patch16_224 --img-size 1024 --model-batch 16
    python tools/fused_tile_sweep.py --skip-sweep --skip-profile --bwd-block-e 4 8 16 32 --bwd-num-warps 1 2
    python tools/fused_tile_sweep.py --skip-sweep --skip-profile --conv-tiles 32:32:4 64:64:4
    python tools/fused_tile_sweep.py --block-e 32 --num-warps 1 --state-pieces 1 2 3 4 --skip-profile
    python tools/fused_tile_sweep.py --skip-sweep --skip-profile --model vim_tiny_patch16_224 --model-train \
        --img-size 1024 --model-batch 8 --backend mamba_ssm

Prints ms per forward call of the scan stage (``bidirectional_selective_scan``) and of the whole fused
op for block_e x num_warps x segments x state-pass pieces, ms per forward + backward for each walk-backward tile
(``--bwd-block-e`` x ``--bwd-num-warps`` x ``--bwd-segments``), the conv kernels per tile
(``--conv-tiles``), then torch-profiler tables: the fused op forward, forward + backward, and (with
``--model``) a bf16 inference forward of the backbone with ``--backend`` (``--model-train``: a bf16
training step, forward + backward), so the kernel that bounds each is named.
"""
import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from vim_backbone.ops import fused_bimamba as fb  # noqa: E402
from vim_backbone.ops.fused_bimamba import bidirectional_scan_fused, bidirectional_selective_scan  # noqa: E402


def make_inputs(batch, channels, length, dtype, dt_rank=12, d_state=16, device="cuda"):
    g = torch.Generator(device=device).manual_seed(0)
    rnd = lambda *s, scale=0.1: (torch.randn(*s, device=device, generator=g) * scale).to(dtype)
    A = -torch.arange(1, d_state + 1, device=device, dtype=torch.float32).expand(channels, d_state).contiguous()
    ones = torch.ones(channels, device=device)
    # x, z: strided halves of a (B, L, 2E) in_proj output, as the mixer passes them
    xz = rnd(batch, length, 2 * channels, scale=1.0).transpose(1, 2)
    return [xz[:, :channels], xz[:, channels:],
            rnd(channels, 4, scale=0.3), rnd(channels), rnd(channels, 4, scale=0.3), rnd(channels),
            rnd(dt_rank + 2 * d_state, channels), rnd(dt_rank + 2 * d_state, channels),
            rnd(channels, dt_rank, scale=0.3), rnd(channels, scale=0.5) - 4,
            rnd(channels, dt_rank, scale=0.3), rnd(channels, scale=0.5) - 4, A, A.clone(), ones, ones.clone(),
            dt_rank, d_state]


def make_scan_inputs(batch, channels, length, dtype, d_state=16, device="cuda"):
    g = torch.Generator(device=device).manual_seed(0)

    def cl(*shape, scale=1.0, shift=0.0):  # (2, B, E|N, L) values, L-major in memory
        t = torch.randn(*shape[:-2], shape[-1], shape[-2], device=device, generator=g) * scale + shift
        return t.to(dtype).transpose(-1, -2)

    A = -torch.arange(1, d_state + 1, device=device, dtype=torch.float32).expand(2, channels, d_state).contiguous()
    # B and C as the fused op feeds them for inference (the sweep times forwards): views of one
    # (2, B, L, 2N) buffer, in the dtype fb.bc_dtype gives a forward without gradients
    bc = cl(2, batch, 2 * d_state, length).to(torch.float32 if fb.bc_dtype(grad=False) == "float32" else dtype)
    return dict(u=cl(2, batch, channels, length), dt=cl(2, batch, channels, length, scale=0.5, shift=-4.0), A=A,
                Bm=bc[:, :, :d_state], Cm=bc[:, :, d_state:],
                D=torch.ones(2, channels, device=device), z=cl(batch, channels, length),
                dt_bias=torch.zeros(2, channels, device=device))


def table(prof, rows):
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--length", type=int, default=4097)
    parser.add_argument("--block-e", nargs="+", type=int, default=[2, 4, 8, 16, 32])
    parser.add_argument("--num-warps", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--segments", nargs="+", type=int, default=[0],
                        help="segments per walk to try (0: the default)")
    parser.add_argument("--state-pieces", nargs="+", type=int, default=[0],
                        help="pieces per segment in the segment-state pass to try (0: STATE_PASS_PIECES)")
    parser.add_argument("--bwd-block-e", nargs="*", type=int, default=[],
                        help="also time forward + backward for these walk-backward channel blocks")
    parser.add_argument("--bwd-num-warps", nargs="+", type=int, default=[1])
    parser.add_argument("--bwd-segments", nargs="+", type=int, default=[0], help="0: the default")
    parser.add_argument("--conv-tiles", nargs="*", default=[], metavar="E:L:WARPS",
                        help="also time the conv kernels (forward; forward + backward) with these tiles, forward and backward alike")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-profile", action="store_true", help="no profiler tables of the fused op")
    parser.add_argument("--model", help="also profile this backbone's bf16 forward (vim_backbone.create_model name)")
    parser.add_argument("--backend", default="fused")
    parser.add_argument("--img-size", type=int, default=1024)
    parser.add_argument("--model-batch", type=int, default=16)
    parser.add_argument("--model-train", action="store_true",
                        help="profile a training step (forward + backward of forward_features().mean()) instead")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    import triton.testing as tt
    inputs = make_inputs(args.batch, args.channels, args.length, torch.bfloat16)
    scan_inputs = make_scan_inputs(args.batch, args.channels, args.length, torch.bfloat16)
    with torch.no_grad():
        if not args.skip_sweep:
            default_pieces = fb.STATE_PASS_PIECES
            for block_e, warps, segs, pieces in itertools.product(args.block_e, args.num_warps, args.segments,
                                                                  args.state_pieces):
                times = []
                kw = dict(block_e=block_e, num_warps=warps, segments=segs or None)
                fb.STATE_PASS_PIECES = pieces or default_pieces
                for fn in (lambda: bidirectional_selective_scan(**scan_inputs, **kw),
                           lambda: bidirectional_scan_fused(*inputs, **kw)):
                    try:
                        times.append(f"{tt.do_bench(fn, warmup=5, rep=40):.3f} ms")
                    except Exception as e:  # e.g. OutOfResources for the largest tiles
                        times.append(type(e).__name__)
                print(f"block_e={block_e:3d} num_warps={warps} segments={segs or 'default'} "
                      f"state_pieces={fb.STATE_PASS_PIECES}: scan {times[0]}, fused op {times[1]}", flush=True)
            fb.STATE_PASS_PIECES = default_pieces
        if not args.skip_profile:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    bidirectional_scan_fused(*inputs)
                torch.cuda.synchronize()
            print(table(prof, 10))
    if args.conv_tiles:
        x = inputs[0].detach().clone().requires_grad_()
        w = torch.randn(2, args.channels, 4, device="cuda", requires_grad=True)
        b = torch.randn(2, args.channels, device="cuda", requires_grad=True)
        gu = torch.randn(2, args.batch, args.length, args.channels, device="cuda", dtype=x.dtype).transpose(2, 3)
    for tile in args.conv_tiles:
        # the tile of both the forward and the backward kernels
        saved = (fb.CONV_BLOCK_E, fb.CONV_BLOCK_L, fb.CONV_NUM_WARPS, fb.CONV_BWD_BLOCK_E, fb.CONV_BWD_BLOCK_L,
                 fb.CONV_BWD_NUM_WARPS)
        fb.CONV_BLOCK_E, fb.CONV_BLOCK_L, fb.CONV_NUM_WARPS = (int(v) for v in tile.split(":"))
        fb.CONV_BWD_BLOCK_E, fb.CONV_BWD_BLOCK_L, fb.CONV_BWD_NUM_WARPS = fb.CONV_BLOCK_E, fb.CONV_BLOCK_L, fb.CONV_NUM_WARPS
        times = []
        for kind in ("triton", "torch"):
            os.environ["VIM_FUSED_CONV_BACKWARD"] = kind
            try:
                with torch.no_grad():
                    fwd = tt.do_bench(lambda: fb._BidirectionalConvSiLU.apply(x, w, b), warmup=5, rep=40)
                both = tt.do_bench(lambda: torch.autograd.grad(fb._BidirectionalConvSiLU.apply(x, w, b), (x, w, b),
                                                               gu), warmup=5, rep=40)
                times.append(f"fwd {fwd:.3f} ms, fwd+bwd ({kind} backward) {both:.3f} ms")
            except Exception as e:
                times.append(type(e).__name__)
        os.environ.pop("VIM_FUSED_CONV_BACKWARD")
        (fb.CONV_BLOCK_E, fb.CONV_BLOCK_L, fb.CONV_NUM_WARPS, fb.CONV_BWD_BLOCK_E, fb.CONV_BWD_BLOCK_L,
         fb.CONV_BWD_NUM_WARPS) = saved
        print(f"conv tile {tile}: " + "; ".join(times), flush=True)
    grad_inputs = [t.detach().clone().requires_grad_() if isinstance(t, torch.Tensor) else t for t in inputs]
    out = bidirectional_scan_fused(*grad_inputs)
    grad = torch.randn_like(out)
    for block_e, warps, segs in itertools.product(args.bwd_block_e, args.bwd_num_warps, args.bwd_segments):
        saved = fb.BWD_WALK_BLOCK_E, fb.BWD_WALK_NUM_WARPS
        fb.BWD_WALK_BLOCK_E, fb.BWD_WALK_NUM_WARPS = block_e, warps
        try:
            step = lambda: bidirectional_scan_fused(*grad_inputs, bwd_segments=segs or None).backward(grad)  # noqa
            ms = f"{tt.do_bench(step, warmup=3, rep=60):.3f} ms"
        except Exception as e:
            ms = type(e).__name__
        finally:
            fb.BWD_WALK_BLOCK_E, fb.BWD_WALK_NUM_WARPS = saved
        print(f"backward {fb.backward_kind()} block_e={block_e:3d} num_warps={warps} segments={segs or 'default'}: "
              f"fused op fwd+bwd {ms}", flush=True)
    if not args.skip_profile:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                bidirectional_scan_fused(*grad_inputs).backward(grad)
            torch.cuda.synchronize()
        print(table(prof, 12))
    if args.model:
        from vim_backbone import create_model
        model = create_model(args.model, num_classes=0, img_size=args.img_size, scan_backend=args.backend).cuda()
        x = torch.randn(args.model_batch, 3, args.img_size, args.img_size, device="cuda")

        def call():
            if args.model_train:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model.forward_features(x).float().mean()
                loss.backward()
            else:
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                    model.forward_features(x)

        model.train(args.model_train)
        for _ in range(2):
            call()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                call()
            torch.cuda.synchronize()
        what = "training step (forward + backward)" if args.model_train else "forward"
        print(f"{args.model} {args.img_size}px batch {args.model_batch} bf16 {what}, backend {args.backend}, 3 calls:")
        print(table(prof, 30))


if __name__ == "__main__":
    main()
