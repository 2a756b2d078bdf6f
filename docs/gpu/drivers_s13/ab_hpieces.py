import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
fb.HEAD_STATE_PASS_PIECES = int(os.environ.get("HPIECES", fb.HEAD_STATE_PASS_PIECES))
tag = f"hpieces={fb.HEAD_STATE_PASS_PIECES}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:16,768:16,1024:32,1248:32,512:32").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    print(f"{tag} {res} b{batch}: {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
