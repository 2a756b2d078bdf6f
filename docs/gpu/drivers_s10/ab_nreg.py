# Vim-Ti fused inference with CUDA graphs, bf16, img/s: register caps of the Gluon walks' passes, alternated
# in one process (rows from argv "res:batch"), DeiT-Ti SDPA once a row for the ratio
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
rows = [tuple(int(v) for v in r.split(":")) for r in sys.argv[1:]] or [(1024, 64), (1248, 64), (1024, 16), (1248, 8)]
configs = [(None, None), (160, None), (168, None), (168, 128)]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    deit = bm.build_deit("deit_tiny", res, "sdpa").cuda()
    sec, _, _, _ = bm.time_model(deit, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    d = batch / sec
    del deit
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    r = {c: [] for c in configs}
    for _ in range(2):
        for c in configs:
            fb.GLUON_OUTPUT_PASS_MAXNREG, fb.GLUON_STATE_PASS_MAXNREG = c
            sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
            r[c].append(batch / sec)
    base = sum(r[configs[0]])
    print(f"{res} b{batch}: deit {d:.1f}; " + "; ".join(
        f"out {c[0]} state {c[1]}: {v[0]:.1f} {v[1]:.1f} ({sum(v) / base:.4f}, {sum(v) / 2 / d:.3f}x deit)"
        for c, v in r.items()), flush=True)
    del model, x
    torch.cuda.empty_cache()
