# the Gluon walk backward compiled for sm_90 on a CPU machine with a channel's states over SPLIT lanes and a register
# cap: registers, spill bytes, and the instructions and MUFU of its token loops (the last two inner loops: the first
# walk's group, and one group's second walk and backward) per 4 tokens and 32 channels. Run with the GPU's Triton
# (3.6.0) on the path:
#   PYTHONPATH=<triton 3.6.0 site> python3 docs/gpu/s19/compile_split.py 1:0 2:0 2:168 2:128 4:0
import os, re, sys
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "tools"))
import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource
from fused_sass_stats import BWD_POINTERS, disassemble, instructions_of, loop_spans, sass_stats
from vim_backbone.ops import fused_bimamba as fb
from vim_backbone.ops import fused_bimamba_gluon as g


def compile_walk(split, maxreg):
    fn = g._scan_bwd_walk_gluon_kernel
    consts = dict(N=16, CHUNK=32, SEGMENTS=4, NUM_WARPS=1, POLY=fb.GLUON_BWD_SOFTPLUS_POLY, GROUP=fb.GLUON_BWD_GROUP,
                  PIECES=fb.GLUON_BWD_SUMMARY_PIECES, CHAINS=fb.gluon_sum_chains(fb.GLUON_BWD_SUM_CHAINS, split),
                  SPLIT=split,
                  **{n: 1 for n in ("s_u_e", "s_dt_e", "s_B_n", "s_C_n", "s_z_e", "s_g_e", "s_o_e")})
    sig = {n: "constexpr" if n in consts else "*bf16" if n in BWD_POINTERS else "*fp32" if n.endswith("_ptr")
           else "i32" for n in fn.arg_names}
    aligned = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names)
               if sig[n] != "constexpr" and (n.endswith("_ptr") or n.startswith("s_") or n == "E")}
    src = GluonASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()},
                         attrs=aligned)
    opts = dict(num_warps=1, **({"maxnreg": maxreg} if maxreg else {}))
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


MIO = ("LDS", "STS", "STSM", "SHFL")  # shared-memory and lane-shuffle instructions (with MUFU, the MIO queue's)


def inner_loops(compiled):
    """(instructions, MUFU) of each loop that contains no other, in the order of the code."""
    lines = disassemble(compiled)[1]
    spans = loop_spans(lines)
    inner = [s for s in spans if not any(o != s and s[0] <= o[0] and o[1] <= s[1] for o in spans)]
    out = []
    for a, b in sorted(inner):
        body = instructions_of(lines[a:b + 1])
        out.append((len(body), sum(1 for x in body if re.search(r"\bMUFU\b", x)),
                    {op: sum(1 for x in body if re.search(rf"\b{op}\b", x)) for op in MIO}))
    return out


print(f"Triton {triton.__version__}")
for arg in sys.argv[1:] or ["1:0", "2:0", "2:168", "2:128"]:
    split, maxreg = (int(v) for v in arg.split(":"))
    c = compile_walk(split, maxreg)
    st = sass_stats(c)
    first, group = [x for x in inner_loops(c) if x[0] > 10][-2:]  # the token loops
    loops = [(n * split, m * split) for n, m, _ in (first, group)]  # per 32 channels
    mio = {op: k * split for op, k in group[2].items()}
    print(f"SPLIT {split} cap {maxreg or 'none'}: {st['registers']} registers, {st['spill_bytes']} spill bytes; "
          f"token loops (instructions, MUFU) per 4 tokens and 32 channels: {loops}, sum {sum(n for n, _ in loops)}; "
          f"the second loop's {mio}", flush=True)
