# tools/benchmark.py (or, with PROFILE=1, docs/gpu/s16/prof_train.py) with the walk backward's summaries taken in
# $PIECES pieces a segment (an A/B knob over GLUON_BWD_SUMMARY_PIECES)
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
if os.environ.get("PIECES"):
    fb.GLUON_BWD_SUMMARY_PIECES = int(os.environ["PIECES"])
script = "docs/gpu/s16/prof_train.py" if os.environ.get("PROFILE") else "tools/benchmark.py"
sys.argv = [script, *sys.argv[1:]]
runpy.run_path(script, run_name="__main__")
