"""Measure the GPU's rate of ``ex2.approx.ftz.f32`` (MUFU.EX2 on the special-function pipe), the
instruction the fused scan spends one of per state element and token.

    python tools/exp2_rate.py            # H200: 4.17 T exp2/s, 15.9 a clock an SM (docs/RESULTS.md, session 7)

Every thread runs eight independent chains of exp2 (so latency is hidden) over enough programs to fill every
SM; the printed rate is exp2 per second and per SM per clock at the GPU's maximum SM clock.
"""
import argparse
import sys

import torch


def measure(iters: int = 1024, programs_per_sm: int = 64, block: int = 256) -> dict:
    import triton
    import triton.language as tl
    import triton.testing as tt

    @triton.jit
    def _ex2(x):
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)

    @triton.jit
    def _kernel(x_ptr, y_ptr, ITERS: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs)
        a0, a1, a2, a3, a4, a5, a6, a7 = x, x + 1.0, x + 2.0, x + 3.0, x + 4.0, x + 5.0, x + 6.0, x + 7.0
        for _ in range(ITERS):  # inputs stay in [-8, 1): no overflow, no denormals
            a0, a1, a2, a3 = _ex2(a0) - 1.0, _ex2(a1) - 1.0, _ex2(a2) - 1.0, _ex2(a3) - 1.0
            a4, a5, a6, a7 = _ex2(a4) - 1.0, _ex2(a5) - 1.0, _ex2(a6) - 1.0, _ex2(a7) - 1.0
        tl.store(y_ptr + offs, a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7)

    props = torch.cuda.get_device_properties(0)
    n = props.multi_processor_count * programs_per_sm * block
    x = -torch.rand(n, device="cuda") * 8.0
    y = torch.empty_like(x)
    fn = lambda: _kernel[(n // block,)](x, y, ITERS=iters, BLOCK=block, num_warps=block // 32)  # noqa: E731
    fn()
    torch.cuda.synchronize()
    ms = tt.do_bench(fn, warmup=10, rep=100)
    rate = n * iters * 8 / (ms * 1e-3)
    clock_hz = getattr(props, "clock_rate", 0) * 1e3 or None  # kHz in torch's properties, where present
    return dict(device=props.name, ms=ms, exp2_per_s=rate,
                per_sm_per_clock=rate / props.multi_processor_count / clock_hz if clock_hz else None)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=1024, help="exp2 a chain")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("exp2_rate needs a CUDA GPU")
    res = measure(args.iters)
    per_clock = f", {res['per_sm_per_clock']:.1f} a clock an SM" if res["per_sm_per_clock"] else ""
    print(f"{res['device']}: {res['ms']:.3f} ms, {res['exp2_per_s'] / 1e12:.2f} T exp2/s{per_clock}")
    return res


if __name__ == "__main__":
    main()
