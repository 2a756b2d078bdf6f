# fused Vim-Ti (package under argv[1]) and DeiT-Ti SDPA, bf16 inference: peak GB without a graph, img/s with one;
# env TAIL="bm,bk,warps,stages" sets the tail kernel's config in the new package
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "tools"))
import torch
import benchmark as bm
import vim_backbone
from vim_backbone.ops import fused_bimamba as fb
assert vim_backbone.__file__.startswith(root), vim_backbone.__file__
if os.environ.get("TAIL") and hasattr(fb, "OUT_BLOCK_M"):
    fb.OUT_BLOCK_M, fb.OUT_BLOCK_K, fb.OUT_NUM_WARPS, fb.OUT_NUM_STAGES = map(int, os.environ["TAIL"].split(","))
deit = "--deit" in sys.argv
tag = "deit" if deit else sys.argv[1] + (" tail " + os.environ.get("TAIL", "") if hasattr(fb, "OUT_BLOCK_M") else "")
for res, batch in ((224, 128), (1024, 16), (1248, 8), (1024, 64), (1248, 64)):
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = (bm.build_deit("deit_tiny", res, "sdpa") if deit else bm.build_vim("vim_tiny", res, "fused")).cuda()
    _, peak, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=2, iters=3)
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    print(f"{tag} {res} b{batch}: {batch / sec:.1f} img/s (graph), {peak:.4f} GB peak (eager)", flush=True)
    del model, x
    torch.cuda.empty_cache()
