import sys, triton, re, collections
sys.path.insert(0, 'tools'); sys.path.insert(0, '.')
from fused_sass_stats import sass_stats
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from vim_backbone.ops import fused_bimamba_kernels as k
fn = k._gate_out_proj_kernel
bm, bk, warps, stages = [int(a) for a in sys.argv[1:5]] if len(sys.argv) > 4 else (64, 32, 4, 3)
consts = dict(BLOCK_M=bm, BLOCK_K=bk, D0=128, D1=64, IEEE=False, F32_DOTS=False, FAST=True)
sig = {n: ("constexpr" if n in consts else "*bf16" if n.endswith("_ptr") else "i32") for n in fn.arg_names}
attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if n.endswith("_ptr") or n.startswith("s_") or n in ("E", "D")}
c = triton.compile(ASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()}, attrs=attrs), target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
ir = c.asm["ttgir"]
print("shared", c.metadata.shared, sass_stats(c))
for key in ("warp_group_dot", "tt.dot", "convert_layout", "local_alloc", "async_copy", "nvidia_mma", "version = 3", "version = 2"):
    print(key, ir.count(key))
sass = c.asm.get("sass") or ""
