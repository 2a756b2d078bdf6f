# training steps of VimBackbone (Vim-Ti, four stride-16 maps, drop path 0.1 as the dense recipes), bf16 autocast,
# SGD: eager against cuda_graph_train=True, img/s and the host's enqueue time; one process, alternated
import os, sys, time
sys.path.insert(0, os.getcwd())
import torch
from vim_backbone.mm.backbone import VimBackbone


def build(graphs):
    torch.manual_seed(0)
    return VimBackbone(arch="tiny", img_size=512, out_indices=(5, 11, 17, 23), drop_path_rate=0.1,
                       cuda_graph_train=graphs).cuda().train()


def run(m, opt, x):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = sum(f.float().mean() for f in m(x))
    loss.backward()
    opt.step()


for res, batch in [(512, 2), (1024, 2)]:
    x = torch.randn(batch, 3, res, res, device="cuda")
    row = []
    for graphs in (False, True, False, True):
        m = build(graphs)
        opt = torch.optim.SGD(m.parameters(), lr=1e-4)
        for _ in range(4):
            run(m, opt, x)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(15):
            run(m, opt, x)
        torch.cuda.synchronize()
        sec = (time.perf_counter() - t) / 15
        host = []
        for _ in range(5):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            run(m, opt, x)
            host.append(time.perf_counter() - t0)
            torch.cuda.synchronize()
        row.append((graphs, batch / sec, sorted(host)[2] * 1e3))
        del m, opt
        torch.cuda.empty_cache()
    print(f"{res}px batch {batch}: " + ", ".join(f"{'graphs' if g else 'eager'} {ips:.1f} img/s (host {h:.1f} ms)"
                                               for g, ips, h in row), flush=True)
