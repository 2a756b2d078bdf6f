# Vim-Ti fused training step img/s (bf16 autocast) of the package under argv[1]: with a CUDA graph and without
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "tools"))
import torch
import benchmark as bm
import vim_backbone
assert vim_backbone.__file__.startswith(root), vim_backbone.__file__
out = []
for res, batch in ((1024, 8), (224, 128)):
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    x = torch.randn(batch, 3, res, res, device="cuda")
    for graph in (True, False):
        sec, peak, _, _ = bm.time_model(model, x, "train", torch.bfloat16, warmup=3, iters=10, cuda_graph_train=graph)
        out.append(f"{res} b{batch} {'graph' if graph else 'eager'} {batch / sec:.2f} img/s {peak:.3f} GB")
    del model, x
    torch.cuda.empty_cache()
print(sys.argv[1] + ": " + "; ".join(out), flush=True)
