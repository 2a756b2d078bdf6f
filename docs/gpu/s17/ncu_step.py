# one Vim-Ti training step (bf16 autocast, 1024^2, batch 8, default settings) for ncu: warm-up steps first
# (compiles), then the step ncu looks at; its -k regex / -c pick the first launches of the backward kernels
import sys, os
sys.path.insert(0, os.getcwd())
import torch
from vim_backbone import create_model

torch.manual_seed(0)
m = create_model("vim_tiny_patch16_224", img_size=1024, scan_backend="fused").cuda().train()
x = torch.randn(8, 3, 1024, 1024, device="cuda")


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m.forward_features(x).float().mean()
    loss.backward()


for _ in range(int(os.environ.get("WARM", "1"))):
    step()
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStart()
step()
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStop()
print("done")
