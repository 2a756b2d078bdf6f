# the residual-add RMSNorm backward alone at Vim's 1024^2 batch-8 rows (8 x 4097 rows of D = 192, or argv[1]; x bf16,
# residual fp32, both gradients): rows a program (BLOCK_M) and warps (argv[2:], "rows,warps"; the first is the
# reference), the package's forward choice first by default; do_bench medians, two rounds; gradients checked
import os, sys
sys.path.insert(0, os.getcwd())
import torch
from triton.testing import do_bench
from vim_backbone.ops import fused_norm as fn
from vim_backbone.ops.fused_bimamba import load_fused_kernels

k = load_fused_kernels()
torch.manual_seed(0)
M, D = 8 * 4097, int(sys.argv[1]) if len(sys.argv) > 1 else 192
BLOCK_D = fn._blocks(D)[0]
res_out = torch.randn(M, D, device="cuda")
rstd = torch.rand(M, device="cuda") + 0.5
w = torch.randn(D, device="cuda")
g = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
g_res = torch.randn(M, D, device="cuda")
dx = torch.empty(M, D, device="cuda", dtype=torch.bfloat16)
dres = torch.empty(M, D, device="cuda")


def run(block_m, warps):
    grid = ((M + block_m - 1) // block_m,)
    dw = torch.empty(grid[0], D, device="cuda")
    k._add_rmsnorm_bwd_kernel[grid](res_out, rstd, w, g, g_res, dx, dres, dw, M, D, HAS_GRAD_RES=True,
                                    HAS_RESIDUAL=True, BLOCK_M=block_m, BLOCK_D=BLOCK_D, num_warps=warps)
    return dw.sum(0)


base = fn._blocks(D)[1], 4
ref_dw = run(*(tuple(int(v) for v in sys.argv[2].split(",")) if len(sys.argv) > 2 else base))
ref_dres = dres.clone()
settings = [tuple(int(v) for v in a.split(",")) for a in sys.argv[2:]] or [base, (8, 4), (16, 8), (32, 4), (32, 8),
                                                                         (64, 8), (4, 2), (8, 2)]
for s in settings:
    dw = run(*s)
    print("check", s, ((dw - ref_dw).abs().max() / ref_dw.abs().max()).item(), (dres - ref_dres).abs().max().item())
for rnd in range(2):
    for s in settings:
        t = do_bench(lambda: run(*s), warmup=25, rep=200)
        print(f"round {rnd} BLOCK_M, warps {s}: {t * 1e3:.1f} us ({(M * D * (4 + 2 + 4 + 2 + 4)) / t / 1e9:.2f} TB/s)",
              flush=True)
