# the conv backward alone at Vim-Ti's 1024^2 batch-8 shapes, as the mixer calls it (x (8, 384, 4097) bf16, the
# x half of a channels-last (B, L, 2E) tensor; both directions' gradient (2, 8, 384, 4097) bf16 channels-last; gx and
# gz written into the halves of one (B, L, 2E) bf16 tensor, gz the sum of the walk's two fp32 terms): the two passes
# (VIM_FUSED_CONV_BACKWARD=twopass) against the one pass at several CONV_BWD_ONE_PASS_TILE settings; results checked
# against the two passes; do_bench medians, the settings alternated over two rounds
import os, sys
sys.path.insert(0, os.getcwd())
import torch
from triton.testing import do_bench
from vim_backbone.ops import fused_bimamba as fb

torch.manual_seed(0)
B, E, L, W = 8, 384, 4097, 4
xz = torch.randn(B, L, 2 * E, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
x = xz[:, :E]
w = torch.randn(2, E, W, device="cuda") * 0.5
b = torch.randn(2, E, device="cuda") * 0.3
gu = torch.randn(2, B, L, E, device="cuda", dtype=torch.bfloat16).transpose(2, 3)
dz = torch.randn(2, B, L, E, device="cuda").transpose(2, 3)
g = torch.empty(B, L, 2 * E, device="cuda", dtype=torch.bfloat16).transpose(1, 2)


def run(kind, tile=None):
    os.environ["VIM_FUSED_CONV_BACKWARD"] = kind
    if tile is not None:
        fb.CONV_BWD_ONE_PASS_TILE = tile
    return fb._conv_backward(x, w, b, gu, g[:, :E], g[:, E:], (dz[0], dz[1]))


ref_gw, ref_gb = run("twopass")
ref_g = g.float().clone()
tiles = [tuple(int(v) for v in t.split(",")) for t in sys.argv[1:]] or [(32, 16, 16, 4), (32, 32, 8, 4)]
for tile in tiles:
    g.zero_()
    gw, gb = run("triton", tile)
    errs = [((a - r).abs().max() / r.abs().max()).item() for a, r in ((gw, ref_gw), (gb, ref_gb), (g.float(), ref_g))]
    print("check", tile, "rel err gw gb gx|gz", ["%.1e" % e for e in errs], flush=True)
for rnd in range(2):
    t = do_bench(lambda: run("twopass"), warmup=25, rep=200)
    print(f"round {rnd} twopass {t * 1e3:.1f} us", flush=True)
    for tile in tiles:
        t = do_bench(lambda: run("triton", tile), warmup=25, rep=200)
        print(f"round {rnd} one pass {tile} {t * 1e3:.1f} us", flush=True)
