# img/s with graphs for env FMA_S / FMA_O (Gluon FMA-pipe exps in the state / output pass), HPIECES; ROWS
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import torch
import benchmark as bm
from vim_backbone.ops import fused_bimamba as fb
fb.GLUON_STATE_PASS_FMA_EXPS = int(os.environ.get("FMA_S", fb.GLUON_STATE_PASS_FMA_EXPS))
fb.GLUON_OUTPUT_PASS_FMA_EXPS = int(os.environ.get("FMA_O", fb.GLUON_OUTPUT_PASS_FMA_EXPS))
fb.HEAD_STATE_PASS_PIECES = int(os.environ.get("HPIECES", fb.HEAD_STATE_PASS_PIECES))
tag = f"fma_s={fb.GLUON_STATE_PASS_FMA_EXPS} fma_o={fb.GLUON_OUTPUT_PASS_FMA_EXPS} hpieces={fb.HEAD_STATE_PASS_PIECES}"
rows = [tuple(map(int, r.split(":"))) for r in os.environ.get("ROWS", "1024:16,1248:8,1024:32,1024:64").split(",")]
for res, batch in rows:
    x = torch.randn(batch, 3, res, res, device="cuda")
    model = bm.build_vim("vim_tiny", res, "fused").cuda()
    sec, _, _, _ = bm.time_model(model, x, "infer", torch.bfloat16, warmup=3, iters=15, cuda_graph=True)
    print(f"{tag} {res} b{batch}: {batch / sec:.1f} img/s", flush=True)
    del model, x
    torch.cuda.empty_cache()
