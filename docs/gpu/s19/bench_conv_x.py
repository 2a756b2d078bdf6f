# the conv backward's second kernel (_conv_bwd_x_kernel: gx from gp's shifted taps, and gz = the sum of the walk's two
# fp32 dz terms) alone at Vim-Ti's 1024^2 batch-8 shapes, as the mixer calls it: gp (2, 8, 384, 4097) fp32 and the dz
# terms channels-last, gx and gz the halves of one (B, L, 2E) bf16 tensor. Tiles (BLOCK_E, BLOCK_L, warps) from argv,
# the package's first; do_bench medians, two rounds; outputs checked against the first tile's. Prints the fastest
# tile last ("best e,l,w").
import os, sys
sys.path.insert(0, os.getcwd())
import torch
from triton.testing import do_bench
from vim_backbone.ops import fused_bimamba as fb

k = fb.load_fused_kernels()
torch.manual_seed(0)
B, E, L, W = 8, 384, 4097, 4
gp = torch.randn(2, B, L, E, device="cuda").transpose(2, 3)
w = torch.randn(2, E, W, device="cuda") * 0.5
dz = torch.randn(2, B, L, E, device="cuda").transpose(2, 3)
g = torch.empty(B, L, 2 * E, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
gx, gz = g[:, :E], g[:, E:]


def run(be, bl, warps):
    grid = (triton_cdiv(L, bl), triton_cdiv(E, be), B)
    k._conv_bwd_x_kernel[grid](gp, w, gx, dz[0], dz[1], gz, E, L, *gp.stride(), *gx.stride(), *dz[0].stride(),
                               *gz.stride(), W=W, BLOCK_E=be, BLOCK_L=bl, DZ_TERMS=2, num_warps=warps)


def triton_cdiv(a, b):
    return (a + b - 1) // b


base = (fb.CONV_BWD_BLOCK_E, fb.CONV_BWD_BLOCK_L, fb.CONV_BWD_NUM_WARPS)
tiles = [base] + [tuple(int(v) for v in t.split(",")) for t in sys.argv[1:] if tuple(int(v) for v in t.split(",")) != base]
run(*base)
ref = g.float().clone()
for t in tiles:
    g.zero_()
    run(*t)
    print("check", t, ((g.float() - ref).abs().max() / ref.abs().max()).item(), flush=True)
times = {t: [] for t in tiles}
for rnd in range(2):
    for t in tiles:
        times[t].append(do_bench(lambda: run(*t), warmup=25, rep=200) * 1e3)
        print(f"round {rnd} {t}: {times[t][-1]:.1f} us", flush=True)
best = min(tiles, key=lambda t: max(times[t]))
print("best " + ",".join(str(v) for v in best))
