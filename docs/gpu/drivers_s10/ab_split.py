# Vim-Ti fused inference with CUDA graphs, bf16, img/s of the package under argv[1]; argv[2:]: configs
# "block_e:segment_target" tried in turn, twice, in one process (block_e 32 / 16 / 8: a channel's states on
# 1 / 2 / 4 lanes)
import os, sys
root = os.path.abspath(sys.argv[1])
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "tools"))
import torch
import benchmark as bm
import vim_backbone
from vim_backbone.ops import fused_bimamba as fb
assert vim_backbone.__file__.startswith(root), vim_backbone.__file__
configs = [tuple(int(v) for v in c.split(":")) for c in sys.argv[2:]] or [(32, 1536)]
for res, batch in ((1024, 64), (1248, 64), (1024, 16), (1248, 8), (224, 128)):
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    x = torch.randn(batch, 3, res, res, device="cuda")
    r = {c: [] for c in configs}
    for _ in range(2):
        for c in configs:
            fb.DEFAULT_BLOCK_E, fb.SEGMENT_TARGET_PROGRAMS = c
            sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
            r[c].append(batch / sec)
    print(f"{sys.argv[1]} {res} b{batch}: " + "; ".join(f"{c[0]}:{c[1]} {v[0]:.1f} {v[1]:.1f}" for c, v in r.items()),
          flush=True)
    del model, x
    torch.cuda.empty_cache()
