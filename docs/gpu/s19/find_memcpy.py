# which CPU ops of a Vim-Ti training step (bf16 autocast, 1024^2 batch 8, grads set to None each step as
# tools/benchmark.py does) launch device-to-device memcpys and elementwise adds, with their Python stacks
import os, sys
sys.path.insert(0, os.getcwd())
import torch
from torch.profiler import profile, ProfilerActivity
from vim_backbone import create_model

m = create_model("vim_tiny_patch16_224", img_size=1024, scan_backend="fused").cuda().train()
x = torch.randn(8, 3, 1024, 1024, device="cuda")


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m.forward_features(x).float().mean()
    loss.backward()
    m.zero_grad(set_to_none=True)


for _ in range(3):
    step()
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True, record_shapes=True) as prof:
    step()
    torch.cuda.synchronize()
seen = {}
for e in prof.events():
    for k in e.kernels:
        if "Memcpy" in k.name or "CUDAFunctor_add" in k.name or "direct_copy" in k.name:
            stack = " <- ".join(s for s in e.stack if "vim_backbone" in s or "torch/autograd" in s)[:400]
            key = (k.name[:60], e.name, str(e.input_shapes)[:120], stack)
            seen[key] = seen.get(key, 0) + 1
for (kname, op, shapes, stack), n in sorted(seen.items(), key=lambda kv: -kv[1]):
    print(f"{n:4d}x {kname} | {op} {shapes} | {stack}")
# device time of the kernels named above, for scale
tot = {}
for e in prof.key_averages():
    if "Memcpy" in e.key or "CUDAFunctor_add" in e.key or "direct_copy" in e.key:
        tot[e.key[:80]] = (e.count, e.self_device_time_total / 1e3)
for k, (c, t) in tot.items():
    print(f"total {t:.3f} ms {c}x {k}")
