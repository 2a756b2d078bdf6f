# peak memory of single fp32 / bf16 convs of the Cascade Mask R-CNN (Vim-T, SimpleFPN) shapes at 512^2, batch 8
# (box head: 8000 RoIs of 7x7; mask head: 800 RoIs of 14x14; FPN / RPN: 128^2 maps), TF32 off as in benchmark.py
import torch
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
print("cudnn", torch.backends.cudnn.version(), "benchmark", torch.backends.cudnn.benchmark)
cases = [("box head conv, 8000 RoIs", (8000, 256, 7, 7)), ("box head conv, 2000 RoIs", (2000, 256, 7, 7)),
         ("mask head conv, 800 RoIs", (800, 256, 14, 14)), ("FPN/RPN conv, 128^2 x 8", (8, 256, 128, 128))]
for dtype in (torch.float32, torch.bfloat16):
    for name, shape in cases:
        conv = torch.nn.Conv2d(256, 256, 3, padding=1).cuda().to(dtype)
        x = torch.randn(shape, device="cuda", dtype=dtype)
        torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            y = conv(x)
        torch.cuda.synchronize()
        extra = (torch.cuda.max_memory_allocated() - base - y.numel() * y.element_size()) / 2 ** 30
        print(f"{str(dtype)[6:]:9s} {name:28s}: input {x.numel() * x.element_size() / 2**30:.3f} GB, "
              f"peak beyond input and output {extra:.3f} GB", flush=True)
        del conv, x, y
