# img/s with graphs (ab_head.py's loop) for env PIECES / TARGET / HEAD / MAXSEG
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
if os.environ.get("PIECES"):
    fb.STATE_PASS_PIECES = int(os.environ["PIECES"])
if os.environ.get("TARGET"):
    fb.SEGMENT_TARGET_PROGRAMS = int(os.environ["TARGET"])
if os.environ.get("HEADMAX"):
    fb.HEAD_MAX_SEGMENTS = int(os.environ["HEADMAX"])
fb.HEAD_SEGMENT_EARLY = os.environ.get("HEAD", "1") == "1"
tag = f"pieces={fb.STATE_PASS_PIECES} target={fb.SEGMENT_TARGET_PROGRAMS} head={int(fb.HEAD_SEGMENT_EARLY)} headmax={fb.HEAD_MAX_SEGMENTS}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:32").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    L = (res // 16) ** 2 + 1
    print(f"{tag} {res} b{batch} (S={fb.forward_segments(batch * 24, L)}): {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
