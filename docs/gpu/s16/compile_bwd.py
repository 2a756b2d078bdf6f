# compile the walk backward kernels (Gluon and Triton) for sm_90 on the CPU machine: registers, spills, counts
import os, sys
sys.path.insert(0, os.getcwd())
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.experimental.gluon._runtime import GluonASTSource
sys.path.insert(0, "tools")
from fused_sass_stats import sass_stats
from vim_backbone.ops import fused_bimamba_gluon as g, fused_bimamba_kernels as k

BF16 = ("u_ptr", "dt_ptr", "z_ptr", "g_ptr", "du_ptr", "ddt_ptr")
UNIT = ("s_u_e", "s_dt_e", "s_B_n", "s_C_n", "s_z_e", "s_g_e", "s_o_e")

def build(fn, source, consts, num_warps):
    consts = {n: v for n, v in consts.items() if n in fn.arg_names}
    for n in UNIT:
        if n in fn.arg_names:
            consts[n] = 1
    sig = {}
    for n in fn.arg_names:
        sig[n] = "constexpr" if n in consts else ("*bf16" if n in BF16 else "*fp32" if n.endswith("_ptr") else "i32")
    aligned = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names)
               if sig[n] != "constexpr" and (n.endswith("_ptr") or n.startswith("s_") or n == "E")}
    src = source(fn=fn, signature=sig, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()}, attrs=aligned)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=num_warps))

which = sys.argv[1:] or ["gwalk", "gseg", "twalk", "tseg"]
for name in which:
    segs = 4
    if name == "gwalk":
        c = build(g._scan_bwd_walk_gluon_kernel, GluonASTSource, dict(N=16, CHUNK=32, SEGMENTS=segs, NUM_WARPS=1, POLY=True, GROUP=int(os.environ.get("GROUP", 4))), 1)
    elif name == "gseg":
        c = build(g._scan_bwd_seg_gluon_kernel, GluonASTSource, dict(N=16, CHUNK=32, SEGMENTS=segs, NUM_WARPS=1, POLY=True, GROUP=int(os.environ.get("GROUP", 4))), 1)
    elif name == "twalk":
        c = build(k._scan_bwd_walk_kernel, ASTSource, dict(N=16, BLOCK_E=16, CHUNK=32, SEGMENTS=segs, FAST=True), 1)
    else:
        c = build(k._scan_bwd_seg_kernel, ASTSource, dict(N=16, BLOCK_E=16, CHUNK=32, SEGMENTS=segs, FAST=True), 1)
    st = sass_stats(c)
    st.pop("layout", None)
    print(name, st, "smem", c.metadata.shared)

def loops(compiled):
    import subprocess, tempfile, re
    from fused_sass_stats import _tool
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        open(cubin, "wb").write(compiled.asm["cubin"])
        sass = subprocess.run([_tool("nvdisasm"), "-c", cubin], capture_output=True, text=True, check=True).stdout
    lines = sass.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.search(r"BRA `?\(?(\.L_x_\d+)\)?", line)
        if m:
            start = next((j for j in range(i) if lines[j].startswith(m.group(1) + ":")), None)
            if start is not None:
                body = [x for x in lines[start:i + 1] if re.search(r"/\*[0-9a-f]{4,}\*/", x)]
                ops = {}
                for x in body:
                    mm = re.search(r"\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)(\.[A-Z0-9_.]+)?", x)
                    if mm:
                        ops[mm.group(1)] = ops.get(mm.group(1), 0) + 1
                out.append((m.group(1), len(body), dict(sorted(ops.items(), key=lambda kv: -kv[1])[:14])))
    return out, sass

if os.environ.get("LOOPS"):
    c = build(g._scan_bwd_walk_gluon_kernel, GluonASTSource, dict(N=16, CHUNK=32, SEGMENTS=4, NUM_WARPS=1, POLY=True), 1)
    ls, sass = loops(c)
    for l in ls:
        print(l)
    open(".scratch/s16/gwalk.sass", "w").write(sass)
