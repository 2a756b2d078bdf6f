# conv tiles and x_proj GEMM forms at Vim-Ti shapes (E = 384, L = 4097), bf16; ms a call (do_bench_cudagraph)
import os, sys, itertools
sys.path.insert(0, os.getcwd())
import torch, triton, triton.language as tl
from triton.testing import do_bench_cudagraph as bench
from vim_backbone.ops import fused_bimamba as fb

@triton.jit
def _xproj_kernel(a_ptr, w_ptr, o_ptr, M, s_a_d, s_a_m, s_w_d, s_w_n, s_o_d, s_o_m,
                  K: tl.constexpr, N: tl.constexpr, NP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    d = tl.program_id(1)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, NP)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    acc = tl.zeros((BLOCK_M, NP), tl.float32)
    for k in tl.range(0, K, BLOCK_K):
        a = tl.load(a_ptr + d * s_a_d + offs_m[:, None] * s_a_m + (k + offs_k)[None, :], mask=mask_m[:, None], other=0.0)
        w = tl.load(w_ptr + d * s_w_d + offs_n[None, :] * s_w_n + (k + offs_k)[:, None], mask=(offs_n < N)[None, :], other=0.0)
        acc = tl.dot(a, w, acc)
    tl.store(o_ptr + d * s_o_d + offs_m[:, None] * s_o_m + offs_n[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=mask_m[:, None] & (offs_n < N)[None, :])

def xproj_triton(rows, w, out, BM, BK, nw, ns):
    M = rows.shape[1]
    _xproj_kernel[(triton.cdiv(M, BM), 2)](rows, w, out, M, rows.stride(0), rows.stride(1), w.stride(0), w.stride(1),
                                           out.stride(0), out.stride(1), K=rows.shape[2], N=w.shape[1], NP=64,
                                           BLOCK_M=BM, BLOCK_K=BK, num_warps=nw, num_stages=ns)

k = fb.load_fused_kernels()
dev = "cuda"
for batch, res in ((16, 1024), (64, 1024), (8, 1248)):
    L = (res // 16) ** 2 + 1; E = 384
    x = torch.randn(batch, L, E, device=dev, dtype=torch.bfloat16).transpose(1, 2)
    cw = torch.randn(2, E, 4, device=dev); cb = torch.randn(2, E, device=dev)
    u = fb._conv_forward(x, cw, cb)
    mb = lambda t: t.numel() * t.element_size() / 1e6
    print(f"--- batch {batch} {res}: x {mb(x):.0f} MB, u {mb(u):.0f} MB", flush=True)
    for be, bl, nw in [(64, 32, 2), (64, 32, 4), (128, 32, 4), (64, 64, 4), (128, 16, 2), (32, 64, 2), (128, 64, 8), (256, 16, 4), (32, 128, 4)]:
        def conv():
            uu = x.new_empty(2, batch, L, E).transpose(2, 3)
            k._conv_fwd_kernel[(triton.cdiv(L, bl), triton.cdiv(E, be), batch)](
                x, cw, cb, uu, E, L, *x.stride(), *uu.stride(), W=4, BLOCK_E=be, BLOCK_L=bl, FAST=True, num_warps=nw)
        try:
            ms = bench(conv)
            print(f"conv {be}x{bl} w{nw}: {ms * 1e3:.1f} us ({(mb(x) + mb(u)) / ms / 1e3:.2f} TB/s)", flush=True)
        except Exception as e:
            print(f"conv {be}x{bl} w{nw}: {type(e).__name__}")
    w = torch.randn(2, 48, E, device=dev, dtype=torch.bfloat16) / 20
    rows = u.transpose(2, 3).reshape(2, batch * L, E)
    ref = torch.bmm(rows, w.transpose(1, 2))
    ms = bench(lambda: torch.bmm(rows, w.transpose(1, 2)))
    print(f"x_proj bmm: {ms * 1e3:.1f} us ({(mb(u) + mb(ref)) / ms / 1e3:.2f} TB/s)", flush=True)
    wc = w.transpose(1, 2).contiguous()
    print(f"x_proj bmm, weight (2, E, 48) contiguous: {bench(lambda: torch.bmm(rows, wc)) * 1e3:.1f} us", flush=True)
    print(f"x_proj two mm: {bench(lambda: [torch.mm(rows[d], w[d].t()) for d in range(2)]) * 1e3:.1f} us", flush=True)
    out = torch.empty_like(ref)
    for BM, BK, nw, ns in itertools.product((64, 128, 256), (64, 128), (4, 8), (3, 4)):
        try:
            xproj_triton(rows, w, out, BM, BK, nw, ns)
            err = (out.float() - ref.float()).abs().max().item()
            ms = bench(lambda: xproj_triton(rows, w, out, BM, BK, nw, ns))
            print(f"x_proj triton {BM}x{BK} w{nw} s{ns}: {ms * 1e3:.1f} us ({(mb(u) + mb(ref)) / ms / 1e3:.2f} TB/s) err {err:.2e}", flush=True)
        except Exception as e:
            print(f"x_proj triton {BM}x{BK} w{nw} s{ns}: {type(e).__name__}", flush=True)
    del x, u, rows, ref, out
    torch.cuda.empty_cache()
