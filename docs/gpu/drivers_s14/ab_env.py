# img/s with graphs, Vim-Ti bf16, for module settings of fused_bimamba given as env FB_<NAME>=<int>; ROWS res:batch,...
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
tag = []
for k, v in sorted(os.environ.items()):
    if k.startswith("FB_"):
        setattr(fb, k[3:], int(v)); tag.append(f"{k[3:]}={v}")
tag = " ".join(tag) or "default"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:64").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    print(f"{tag} {res} b{batch}: {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
