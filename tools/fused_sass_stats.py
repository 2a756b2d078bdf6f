"""Compile the fused walks (forward; Gluon walk backward) for a GPU architecture without a GPU and count what matters.

    python tools/fused_sass_stats.py                       # sm_90, bf16, block_e x num_warps defaults
    python tools/fused_sass_stats.py --arch 90 --configs 8:1 32:1 --store-states
    python tools/fused_sass_stats.py --kernel gluon --configs 32:1 --state-pass   # the Gluon walk, pass 1
    python tools/fused_sass_stats.py --kernel gluon-bwd --configs 32:1            # the Gluon walk backward

Pointers, strides and E are declared 16-byte aligned / divisible by 16, as the launcher specialises them
for Vim's shapes (E = 384). For each (block_e, num_warps) it prints the registers per thread, local-memory (spill)
bytes, the machine instructions that bound a token step in the whole kernel: MUFU (exp2 / log2 / rcp on
the special-function units), SHFL (lane shuffles of the reductions over N), BAR (barriers) and LDG /
STG (global loads / stores), the instructions and MUFU of the token loop alone (four token steps; the
JSON rows also count its BAR and LDSM, shared-memory round trips of layout conversions), and
the state tile's layout (``threadsPerWarp`` along (N, channels)). ``--kernel gluon`` compiles the Gluon walk
(``fused_bimamba_gluon``, whose tile is a channel a lane, or two or four: block_e = 32 x warps / 1, 2, 4)
instead of the Triton one; ``--kernel gluon-bwd`` the Gluon walk backward (``_scan_bwd_walk_gluon_kernel`` with the
package's group, pieces, softplus and sum settings; block_e = 32 x warps / 1, 2, 4 as in the forward; its loop is a
chunk's, whose body holds the first walk's group of tokens and one group's second walk and backward);
``--state-pass`` the segment-state pass (no outputs) instead of the output pass.
Spill bytes count the local memory and the stack frame (where ptxas spills in these kernels, which call nothing).
Uses the ptxas / nvdisasm that ship with Triton; nothing runs on a GPU, so it works on CPU machines.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# pointers to the activations (in the compiled dtype); the other pointers are fp32
POINTERS = ("u_ptr", "dt_ptr", "y_ptr")
BWD_POINTERS = ("u_ptr", "dt_ptr", "z_ptr", "g_ptr", "du_ptr", "ddt_ptr")
# strides of 1 are specialised to constants by Triton's launcher: the channel (and state) strides of
# the channels-last tensors the fused op passes, and A's state stride in the output pass (its channel
# stride in the state pass)
UNIT_STRIDES = ("s_u_e", "s_dt_e", "s_B_n", "s_C_n", "s_y_e")
COUNTED = ("MUFU", "SHFL", "BAR", "LDG", "STG")


def compile_forward(block_e: int, num_warps: int, arch: int, dtype: str = "bf16", store_states: bool = False,
                    n_state: int = 16, kernel: str = "triton", state_pass: bool = False):
    """The compiled forward walk (``_scan_fwd_kernel``, or with ``kernel="gluon"`` ``_scan_fwd_gluon_kernel``)
    for one tile shape: its output pass, or with ``state_pass`` its segment-state pass (4 segments of 4
    pieces), each with the stage (Gluon) the fused op launches it with."""
    from triton.compiler import ASTSource

    segments = dict(SEGMENTS=4, SUB=4) if state_pass else dict(SEGMENTS=1, SUB=1)
    consts = dict(N=n_state, BLOCK_E=block_e, CHUNK=32, STORE_STATES=store_states and not state_pass,
                  WRITE_Y=not state_pass, HEAD=False, **segments, **{name: 1 for name in UNIT_STRIDES})
    consts["s_A_e" if state_pass else "s_A_n"] = 1
    if kernel == "gluon":
        from triton.experimental.gluon._runtime import GluonASTSource

        from vim_backbone.ops import fused_bimamba as fb
        from vim_backbone.ops import fused_bimamba_gluon as g
        fn, source = g._scan_fwd_gluon_kernel, GluonASTSource
        split = 32 * num_warps // block_e
        consts.update(NUM_WARPS=num_warps, SPLIT=split,
                      STAGE=fb.GLUON_STATE_PASS_STAGE if state_pass else fb.GLUON_OUTPUT_PASS_STAGE,
                      POLY=fb.GLUON_SOFTPLUS_POLY,
                      CHAINS=0 if state_pass else fb.gluon_sum_chains(fb.GLUON_FWD_SUM_CHAINS, split))
    else:
        from vim_backbone.ops import fused_bimamba_kernels as k
        fn, source = k._scan_fwd_kernel, ASTSource
        consts.update(FAST=True)
    return _compile(fn, source, consts, POINTERS, dtype, num_warps, arch)


def _compile(fn, source, consts: dict, low_pointers, dtype: str, num_warps: int, arch: int):
    """``fn`` compiled for sm_``arch`` with the constexprs of ``consts`` it takes, ``low_pointers`` to ``dtype`` and
    its other pointers to fp32."""
    import triton
    from triton.backends.compiler import GPUTarget

    consts = {name: v for name, v in consts.items() if name in fn.arg_names}
    signature = {name: "constexpr" if name in consts else f"*{dtype}" if name in low_pointers
                 else "*fp32" if name.endswith("_ptr") else "i32" for name in fn.arg_names}
    # what the launcher sees for Vim's shapes: 16-byte aligned pointers, strides divisible by 16
    # (E = 384, the padded x_proj width 48, ...), which lets the compiler use vector loads
    aligned = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
               if signature[name] != "constexpr" and (name.endswith("_ptr") or name.startswith("s_") or name == "E")}
    src = source(fn=fn, signature=signature, constexprs={(fn.arg_names.index(n),): v for n, v in consts.items()},
                 attrs=aligned)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=num_warps))


def compile_walk_backward(num_warps: int, arch: int, dtype: str = "bf16", n_state: int = 16, split: int = 1):
    """The compiled Gluon walk backward, as the fused op launches it for 4 segments of chunks of 32 tokens: u, dt,
    z, the output gradient, du and ddt in ``dtype``, the rest fp32; a channel's states over ``split`` lanes."""
    from triton.experimental.gluon._runtime import GluonASTSource

    from vim_backbone.ops import fused_bimamba as fb
    from vim_backbone.ops import fused_bimamba_gluon as g
    consts = dict(N=n_state, CHUNK=32, SEGMENTS=4, NUM_WARPS=num_warps, POLY=fb.GLUON_BWD_SOFTPLUS_POLY,
                  GROUP=fb.GLUON_BWD_GROUP, PIECES=fb.GLUON_BWD_SUMMARY_PIECES, SPLIT=split,
                  CHAINS=fb.gluon_sum_chains(fb.GLUON_BWD_SUM_CHAINS, split),
                  **{name: 1 for name in ("s_u_e", "s_dt_e", "s_B_n", "s_C_n", "s_z_e", "s_g_e", "s_o_e")})
    return _compile(g._scan_bwd_walk_gluon_kernel, GluonASTSource, consts, BWD_POINTERS, dtype, num_warps, arch)


def _tool(name: str) -> str:
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def disassemble(compiled):
    """The compiled kernel's resource usage (cuobjdump -res-usage) and its SASS lines (nvdisasm)."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([_tool("cuobjdump"), "-res-usage", cubin], capture_output=True, text=True,
                               check=True).stdout
        sass = subprocess.run([_tool("nvdisasm"), "-c", cubin], capture_output=True, text=True, check=True).stdout
    return usage, sass.splitlines()


def instructions_of(lines):
    """The SASS lines that are instructions (they carry an address comment)."""
    return [line for line in lines if re.search(r"/\*[0-9a-f]{4,}\*/", line)]


def loop_spans(lines):
    """(first, last) line indices of each loop, in the order of its backward branch: from the label the branch
    jumps to, to the branch."""
    spans = []
    for i, line in enumerate(lines):
        m = re.search(r"BRA `?\(?(\.L_x_\d+)\)?", line)
        if m:
            start = next((j for j in range(i) if lines[j].startswith(m.group(1) + ":")), None)
            if start is not None:
                spans.append((start, i))
    return spans


def sass_stats(compiled) -> dict:
    """Registers, spill bytes, instruction counts of the whole kernel and the tile layout."""
    usage, lines = disassemble(compiled)
    regs = int(re.search(r"REG:(\d+)", usage).group(1))
    local = int(re.search(r"LOCAL:(\d+)", usage).group(1)) + int(re.search(r"STACK:(\d+)", usage).group(1))
    instructions = instructions_of(lines)
    counts = {op: sum(1 for line in instructions if re.search(rf"\b{op}\b", line)) for op in COUNTED}
    # the token loop: the longest (four token steps)
    loop = []
    for start, end in loop_spans(lines):
        if end - start > len(loop):
            loop = instructions_of(lines[start:end + 1])
    counts["loop_instructions"] = len(loop)
    for op in ("MUFU", "BAR", "LDSM"):  # LDSM: a tile read back from shared memory (a layout conversion)
        counts[f"loop_{op}"] = sum(1 for line in loop if re.search(rf"\b{op}\b", line))
    layout = re.search(r"#blocked = #ttg\.blocked<\{([^}]*)\}>", compiled.asm["ttgir"])
    return dict(registers=regs, spill_bytes=local, instructions=len(instructions), **counts,
                layout=layout.group(1) if layout else "?")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90 = H100/H200)")
    p.add_argument("--configs", nargs="+", default=["8:1", "16:1", "32:1", "64:2"], metavar="BLOCK_E:WARPS")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--store-states", action="store_true", help="the training variant (saves chunk states)")
    p.add_argument("--kernel", default="triton", choices=["triton", "gluon", "gluon-bwd"],
                   help="which walk: the Triton or Gluon forward, or the Gluon walk backward")
    p.add_argument("--state-pass", action="store_true", help="the segment-state pass instead of the output pass")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        p.error("TRITON_INTERPRET=1 replaces the kernels by interpreted functions: unset it")
    rows = []
    print("| block_e | warps | registers | spill bytes | instructions | MUFU | SHFL | BAR | LDG | STG "
          "| loop instructions | loop MUFU | layout |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg in args.configs:
        block_e, warps = (int(v) for v in cfg.split(":"))
        if args.kernel == "gluon-bwd":
            compiled = compile_walk_backward(warps, args.arch, args.dtype, split=32 * warps // block_e)
        else:
            compiled = compile_forward(block_e, warps, args.arch, args.dtype, args.store_states, kernel=args.kernel,
                                       state_pass=args.state_pass)
        st = sass_stats(compiled)
        rows.append(dict(block_e=block_e, num_warps=warps, **st))
        print(f"| {block_e} | {warps} | {st['registers']} | {st['spill_bytes']} | {st['instructions']} | "
              + " | ".join(str(st[op]) for op in COUNTED + ("loop_instructions", "loop_MUFU"))
              + f" | {st['layout']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
