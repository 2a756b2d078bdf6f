# tools/benchmark.py with A/B knobs over the package's constants from the environment: PIECES ->
# GLUON_BWD_SUMMARY_PIECES, BWD_POLY=0|1 -> GLUON_BWD_SOFTPLUS_POLY, DZ=sep -> the z gradient's two terms summed
# in a launch of their own after the conv backward (session 16's way), not in the conv backward's second kernel
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
if os.environ.get("PIECES"):
    fb.GLUON_BWD_SUMMARY_PIECES = int(os.environ["PIECES"])
if os.environ.get("BWD_POLY"):
    fb.GLUON_BWD_SOFTPLUS_POLY = os.environ["BWD_POLY"] == "1"
if os.environ.get("DZ") == "sep":
    fused = fb._conv_backward

    def separate(x, weight, bias, grad_u, gx, gz=None, dz_terms=()):
        out = fused(x, weight, bias, grad_u, gx)
        if gz is not None:
            fb._sum_into(gz, dz_terms)
        return out

    fb._conv_backward = separate
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
