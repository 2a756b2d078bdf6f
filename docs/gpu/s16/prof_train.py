# kernel time of one Vim-Ti training step (bf16 autocast, forward_features().mean() backward), 1024^2 batch 8,
# default against scan_recompute=True: top kernels by CUDA time, per step
import sys, os
sys.path.insert(0, os.getcwd())
import torch
from torch.profiler import profile, ProfilerActivity
from vim_backbone import create_model

for rec in (False, True):
    torch.manual_seed(0)
    m = create_model("vim_tiny_patch16_224", img_size=1024, scan_backend="fused", scan_recompute=rec).cuda().train()
    x = torch.randn(8, 3, 1024, 1024, device="cuda")
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = m.forward_features(x).float().mean()
        loss.backward()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    n = 3
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            step()
        torch.cuda.synchronize()
    ev = [e for e in prof.key_averages() if e.device_time_total > 0]
    tot = sum(e.self_device_time_total for e in ev) / n / 1e3
    print(f"== scan_recompute={rec}: {tot:.1f} ms of kernels a step")
    for e in sorted(ev, key=lambda e: -e.self_device_time_total)[:18]:
        print(f"{e.self_device_time_total / n / 1e3:8.2f} ms {e.count // n:5d}x  {e.key[:110]}")
    del m
