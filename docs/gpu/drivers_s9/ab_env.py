# Vim-Ti fused inference with CUDA graphs, bf16, img/s: VIM_FUSED_XPROJ=cublas vs fused alternated in one process
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
rows = [tuple(int(v) for v in r.split(":")) for r in sys.argv[1:]] or [(1024, 64), (1024, 16), (1248, 64), (1248, 8)]
for res, batch in rows:
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    x = torch.randn(batch, 3, res, res, device="cuda")
    r = {"cublas": [], "fused": []}
    for _ in range(2):
        for kind in ("cublas", "fused"):
            os.environ["VIM_FUSED_XPROJ"] = kind
            sec, peak, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
            r[kind].append(batch / sec)
    print(f"{res} b{batch}: " + "; ".join(f"{k} {v[0]:.1f} {v[1]:.1f}" for k, v in r.items())
          + f"  ratio {sum(r['fused']) / sum(r['cublas']):.4f}", flush=True)
    del model, x
    torch.cuda.empty_cache()
