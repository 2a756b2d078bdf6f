# fused Vim-Ti bf16 inference img/s with a CUDA graph; the batch cut into K chunks, each on its own CUDA stream,
# blocks launched interleaved (env K=1,2,4), TARGET (SEGMENT_TARGET_PROGRAMS), HEAD, ROWS="res:batch,..."
import os, sys
root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ".")
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
from vim_backbone.models.vision_mamba import VisionMamba
fb.HEAD_SEGMENT_EARLY = os.environ.get("HEAD", "1") == "1"
if os.environ.get("TARGET"):
    fb.SEGMENT_TARGET_PROGRAMS = int(os.environ["TARGET"])
K = int(os.environ.get("K", "1"))
_streams = []

def streamed(self, x):
    if K == 1:
        return orig(self, x)
    main = torch.cuda.current_stream()
    while len(_streams) < K:
        _streams.append(torch.cuda.Stream())
    chunks = x.chunk(K)
    states = []
    for s, xc in zip(_streams, chunks):
        s.wait_stream(main)
        with torch.cuda.stream(s):
            states.append([self.embed(xc)[0], None])
    for layer in self.layers:
        for s, st in zip(_streams, states):
            with torch.cuda.stream(s):
                st[0], st[1] = self._block(layer, st[0], st[1])
    outs = []
    for s, st in zip(_streams, states):
        with torch.cuda.stream(s):
            outs.append(self._final_norm(st[0], st[1]))
        main.wait_stream(s)
    return torch.cat(outs)

orig = VisionMamba.forward_features
VisionMamba.forward_features = streamed
tag = f"K={K} head={int(fb.HEAD_SEGMENT_EARLY)} target={fb.SEGMENT_TARGET_PROGRAMS}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:64").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
        ref = orig(model, x)  # kept weights prepared on the main stream
        if K > 1:
            got = streamed(model, x)
            torch.cuda.synchronize()
            print(f"{tag} {res} b{batch} check: max |K - 1| = {(got.float() - ref.float()).abs().max().item():.3e}"
                  f" (max |ref| {ref.float().abs().max().item():.2f})", flush=True)
        del ref
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    L = (res // 16) ** 2 + 1
    segs = fb.forward_segments(batch // K * 24, L)
    print(f"{tag} {res} b{batch} (S={segs}): {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
