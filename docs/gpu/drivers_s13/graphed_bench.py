# eager against cuda_graph=True inference: VimBackbone (Vim-Ti, four taps, the UperNet recipe's outputs) and
# the classifier, img/s; each row: the same model, graphed flag toggled, timed in turn
import os, sys, time
sys.path.insert(0, os.getcwd())
import torch
from vim_backbone.mm.backbone import VimBackbone
import vim_backbone as vim
from vim_backbone.models.cuda_graph import GraphedForward

def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters

rows = [("seg taps", 512, 1, None), ("seg taps", 512, 1, torch.bfloat16), ("seg taps", 1024, 2, torch.bfloat16),
        ("classifier", 224, 1, torch.bfloat16), ("classifier", 224, 8, torch.bfloat16)]
if os.environ.get("ROWS") == "fp32":
    rows = [r for r in rows if r[3] is None] + [("classifier", 224, 8, None)]
for kind, res, batch, amp in rows:
    if kind == "seg taps":
        m = VimBackbone(arch="tiny", img_size=512, out_indices=(5, 11, 17, 23), tap_scales=(2, 2, 1, 0.5),
                        cuda_graph=True).cuda().eval()
    else:
        m = vim.create_model("vim_tiny_patch16_224", cuda_graph=True).cuda().eval()
    x = torch.randn(batch, 3, res, res, device="cuda")
    def run():
        with torch.no_grad(), torch.autocast("cuda", dtype=amp or torch.float32, enabled=amp is not None):
            return m(x)
    graphed = m.graphed
    m.graphed = None
    eager = timed(run, 20)
    m.graphed = graphed
    g = timed(run, 50)
    with torch.no_grad(), torch.autocast("cuda", dtype=amp or torch.float32, enabled=amp is not None):
        a = m(x); b = m._forward(x)
    same = all(torch.equal(p, q) for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)))
    print(f"{kind} {res}px batch {batch} {amp or 'fp32'}: eager {batch / eager:.1f} img/s, cuda_graph {batch / g:.1f} img/s "
          f"({eager / g:.2f}x), graphs {len(graphed.graphs)}, equal to eager: {same}", flush=True)
    del m, x
    torch.cuda.empty_cache()
