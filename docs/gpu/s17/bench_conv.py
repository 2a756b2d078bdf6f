# the conv backward alone at Vim-Ti's 1024^2 batch-8 shapes (x (8, 384, 4097) bf16 channels-last, both directions'
# gradient (2, 8, 384, 4097) bf16 channels-last): the session-16 first step (per-tile sums; its kernels file given as
# argv[1], the committed one before this change) against the looped one at several CONV_BWD_PRE_TILE settings;
# results checked against each other; do_bench medians, the settings alternated over two rounds
import importlib.util, os, sys
sys.path.insert(0, os.getcwd())
import torch
import triton
from triton.testing import do_bench
from vim_backbone.ops import fused_bimamba as fb

spec = importlib.util.spec_from_file_location("old_kernels", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
torch.manual_seed(0)
B, E, L, W = 8, 384, 4097, 4
x = torch.randn(B, L, E, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
w = torch.randn(2, E, W, device="cuda") * 0.5
b = torch.randn(2, E, device="cuda") * 0.3
gu = torch.randn(2, B, L, E, device="cuda", dtype=torch.bfloat16).transpose(2, 3)
gx = torch.empty(B, L, E, device="cuda", dtype=torch.bfloat16).transpose(1, 2)


def run_old():
    gp = torch.empty(2, B, L, E, device="cuda", dtype=torch.float32).transpose(2, 3)
    gw = torch.zeros_like(w)
    gb = torch.zeros_like(b)
    grid = (triton.cdiv(L, 64), triton.cdiv(E, 32), B)
    old._conv_bwd_pre_kernel[grid](x, w, b, gu, gp, gw, gb, E, L, *x.stride(), *gu.stride(), *gp.stride(), W=W,
                                   BLOCK_E=32, BLOCK_L=64, FAST=True, num_warps=4)
    fb.load_fused_kernels()._conv_bwd_x_kernel[grid](gp, w, gx, E, L, *gp.stride(), *gx.stride(), W=W, BLOCK_E=32,
                                                     BLOCK_L=64, num_warps=4)
    return gw, gb


def run_new(tile):
    fb.CONV_BWD_PRE_TILE = tile
    return fb._conv_backward(x, w, b, gu, gx)


ref_gw, ref_gb = run_old()
ref_gx = gx.clone()
tiles = [(32, 32, 8, 4), (32, 32, 16, 4), (32, 32, 4, 4), (32, 16, 16, 4), (32, 32, 8, 2), (64, 32, 8, 4),
         (32, 64, 4, 4), (32, 64, 1, 4)]
for tile in tiles:
    gw, gb = run_new(tile)
    errs = [((a - r).abs().max() / r.abs().max()).item() for a, r in ((gw, ref_gw), (gb, ref_gb), (gx.float(), ref_gx.float()))]
    print("check", tile, "rel err gw gb gx", ["%.1e" % e for e in errs])
for rnd in range(2):
    t_old = do_bench(run_old, warmup=25, rep=200)
    print(f"round {rnd}: session-16 pre + x: {t_old * 1e3:.1f} us")
    for tile in tiles:
        t = do_bench(lambda: run_new(tile), warmup=25, rep=200)
        print(f"round {rnd}: {tile} pre + x: {t * 1e3:.1f} us ({t_old / t:.2f}x)")
best = min(tiles, key=lambda tile: do_bench(lambda: run_new(tile), warmup=25, rep=200))
print("best", ",".join(map(str, best)))
