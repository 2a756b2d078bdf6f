# fused Vim-Ti bf16 inference, img/s with a CUDA graph, in this tree; env HEAD=0/1 (HEAD_SEGMENT_EARLY),
# TARGET (SEGMENT_TARGET_PROGRAMS), NOSIDE=1 (segment 0's walk in order, no second stream), ROWS="res:batch,..."
import os, sys
root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ".")
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
fb.HEAD_SEGMENT_EARLY = os.environ.get("HEAD", "1") == "1"
fb.HEAD_SEGMENT_FRACTION = float(os.environ.get("FRAC", "1.0"))
if os.environ.get("TARGET"):
    fb.SEGMENT_TARGET_PROGRAMS = int(os.environ["TARGET"])
if os.environ.get("NOSIDE") == "1":
    fb._beside.__init__ = lambda self, device: setattr(self, "device", None)
if os.environ.get("PRIO"):
    fb._beside._streams[torch.cuda.current_device()] = torch.cuda.Stream(priority=int(os.environ["PRIO"]))
tag = f"prio={os.environ.get('PRIO', '')} head={int(fb.HEAD_SEGMENT_EARLY)} frac={fb.HEAD_SEGMENT_FRACTION} target={fb.SEGMENT_TARGET_PROGRAMS} noside={os.environ.get('NOSIDE', '0')}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:32").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    L = (res // 16) ** 2 + 1
    segs = fb.forward_segments(batch * 24, L)
    print(f"{tag} {res} b{batch} (S={segs}): {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
