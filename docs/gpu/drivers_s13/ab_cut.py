# img/s with graphs for env HEADMAX (HEAD_MAX_SEGMENTS), TARGET (SEGMENT_TARGET_PROGRAMS), HPIECES; ROWS
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
fb.HEAD_STATE_PASS_PIECES = int(os.environ.get("HPIECES", fb.HEAD_STATE_PASS_PIECES))
fb.HEAD_MAX_SEGMENTS = int(os.environ.get("HEADMAX", fb.HEAD_MAX_SEGMENTS))
fb.SEGMENT_TARGET_PROGRAMS = int(os.environ.get("TARGET", fb.SEGMENT_TARGET_PROGRAMS))
tag = f"hpieces={fb.HEAD_STATE_PASS_PIECES} headmax={fb.HEAD_MAX_SEGMENTS} target={fb.SEGMENT_TARGET_PROGRAMS}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:16,1248:8,1024:8").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    L = (res // 16) ** 2 + 1
    print(f"{tag} {res} b{batch} (S={fb.forward_segments(batch * 24, L)}): {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
