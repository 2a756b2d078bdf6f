# How this Triton compiles gl.sum over a thread's 16 states (a (16, 32) tile, a channel a lane) for sm_90, on a
# machine without a GPU: prints the kernel's floating-point instructions. Triton 3.6.0: one chain of 16 FFMA (after an
# FMUL); 3.8.0: a tree, 8 FMUL + 8 FFMA + 7 FADD. Run: python3 docs/gpu/s18/sum_order.py
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tools"))
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.experimental import gluon  # noqa: E402
from triton.experimental.gluon import language as gl  # noqa: E402
from triton.experimental.gluon._runtime import GluonASTSource  # noqa: E402
from fused_sass_stats import _tool  # noqa: E402


@gluon.jit
def _dot(x_ptr, c_ptr, y_ptr, N: gl.constexpr):
    TILE: gl.constexpr = gl.BlockedLayout([N, 1], [1, 32], [1, 1], [0, 1])
    e = gl.arange(0, 32, layout=gl.SliceLayout(0, TILE))
    n = gl.arange(0, N, layout=gl.SliceLayout(1, TILE))
    h = gl.load(x_ptr + e[None, :] * N + n[:, None])
    c = gl.load(c_ptr + n)
    gl.store(y_ptr + e, gl.sum(h * c[:, None], axis=0))


src = GluonASTSource(fn=_dot, signature={"x_ptr": "*fp32", "c_ptr": "*fp32", "y_ptr": "*fp32", "N": "constexpr"},
                     constexprs={(3,): 16})
compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=1))
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "k.cubin"), "wb") as f:
        f.write(compiled.asm["cubin"])
    sass = subprocess.run([_tool("nvdisasm"), "-c", os.path.join(tmp, "k.cubin")], capture_output=True, text=True,
                          check=True).stdout
print("triton", triton.__version__)
for line in sass.splitlines():
    if "*/" in line and any(op in line for op in ("FFMA", "FMUL", "FADD")):
        print(line.split("*/")[1].strip())
