# compile _gate_out_proj_kernel for sm_90 on the CPU machine (Triton 3.6): registers, spills, shared memory
import sys, triton
sys.path.insert(0, 'tools')
from fused_sass_stats import sass_stats
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from vim_backbone.ops import fused_bimamba_kernels as k
fn = k._gate_out_proj_kernel
def comp(bm, bk, warps, stages, add_norm, d0=128, d1=64):
    consts = dict(BLOCK_M=bm, BLOCK_K=bk, D0=d0, D1=d1, IEEE=False, F32_DOTS=False, FAST=True, ADD_NORM=add_norm)
    sig = {}
    for n in fn.arg_names:
        if n in consts: sig[n] = "constexpr"
        elif n in ("res_ptr", "res_out_ptr"): sig[n] = "*fp32"
        elif n.endswith("_ptr"): sig[n] = "*bf16"
        elif n == "eps": sig[n] = "fp32"
        else: sig[n] = "i32"
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if n.endswith("_ptr") or n.startswith("s_") or n in ("E", "D")}
    src = ASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()}, attrs=attrs)
    c = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    st = sass_stats(c)
    return c.metadata.shared, st["registers"], st["spill_bytes"], st["instructions"]
for cfg in [(64, 32, 4, 3), (64, 32, 4, 2), (128, 32, 8, 3), (32, 32, 4, 3)]:
    for an in (False, True):
        try:
            print(cfg, an, comp(*cfg, an), flush=True)
        except Exception as e:
            print(cfg, an, "ERR", type(e).__name__, str(e)[:150])
if "--ir" in sys.argv:
    consts = dict(BLOCK_M=64, BLOCK_K=32, D0=128, D1=64, IEEE=False, F32_DOTS=False, FAST=True, ADD_NORM=True)
    sig = {n: ("constexpr" if n in consts else "*fp32" if n in ("res_ptr", "res_out_ptr") else "*bf16" if n.endswith("_ptr") else "fp32" if n == "eps" else "i32") for n in fn.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if n.endswith("_ptr") or n.startswith("s_") or n in ("E", "D")}
    c = triton.compile(ASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()}, attrs=attrs), target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4, num_stages=3))
    ir = c.asm["ttgir"]
    import re
    print("convert_layout", ir.count("convert_layout"), "local_alloc", ir.count("local_alloc"), "local_load", ir.count("local_load"))
    for line in ir.splitlines():
        if "convert_layout" in line: print(line.strip()[:230])
