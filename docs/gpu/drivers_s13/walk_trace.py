# per-launch device times of the walks in one Vim-Ti forward (torch profiler events), bf16, fused; ROWS="res:batch,..."
# env PIECES (STATE_PASS_PIECES), TARGET, HEAD
import os, sys
sys.path.insert(0, os.getcwd())
import torch
from torch.profiler import ProfilerActivity, profile
from vim_backbone import create_model
from vim_backbone.ops import fused_bimamba as fb
if os.environ.get("PIECES"):
    fb.STATE_PASS_PIECES = int(os.environ["PIECES"])
if os.environ.get("TARGET"):
    fb.SEGMENT_TARGET_PROGRAMS = int(os.environ["TARGET"])
fb.HEAD_SEGMENT_EARLY = os.environ.get("HEAD", "1") == "1"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:64").split(",")]
for res, batch in rows:
    model = create_model("vim_tiny_patch16_224", num_classes=0, img_size=res, scan_backend="fused").cuda().eval()
    x = torch.randn(batch, 3, res, res, device="cuda")
    def fwd():
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16):
            model.forward_features(x)
    for _ in range(3):
        fwd()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fwd()
        torch.cuda.synchronize()
    ev = sorted([e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA],
                key=lambda e: e.time_range.start)
    t0 = ev[0].time_range.start
    span = ev[-1].time_range.end - t0
    walks = [e for e in ev if "scan_fwd" in e.name]
    per = len(walks) // 24
    L = (res // 16) ** 2 + 1
    S = fb.forward_segments(batch * 24, L)
    print(f"pieces={fb.STATE_PASS_PIECES} target={fb.SEGMENT_TARGET_PROGRAMS} head={int(fb.HEAD_SEGMENT_EARLY)} "
          f"{res} b{batch} S={S}: forward span {span / 1e3:.3f} ms, kernels {sum(e.time_range.elapsed_us() for e in ev) / 1e3:.3f} ms, "
          f"walk launches a layer {per}", flush=True)
    # mean over layers 2..21 of each walk launch's duration and start (relative to the layer's first walk launch)
    for j in range(per):
        d = [walks[l * per + j].time_range.elapsed_us() for l in range(2, 22)]
        s = [walks[l * per + j].time_range.start - walks[l * per].time_range.start for l in range(2, 22)]
        print(f"  walk launch {j}: {sum(d) / len(d):7.1f} us, starts at +{sum(s) / len(s):6.1f} us", flush=True)
    lay = [walks[l * per + per - 1].time_range.end - walks[l * per].time_range.start for l in range(2, 22)]
    print(f"  walks of a layer, first start to last end: {sum(lay) / len(lay):.1f} us", flush=True)
    del model, x
    torch.cuda.empty_cache()
