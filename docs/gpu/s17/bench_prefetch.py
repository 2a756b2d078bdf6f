# tools/benchmark.py with the Gluon backward's prefetch set from the environment (an A/B knob over the package's
# constant): PREFETCH=<summaries><walk> as two 0/1 digits -> GLUON_BWD_PREFETCH
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
p = os.environ.get("PREFETCH")
if p:
    fb.GLUON_BWD_PREFETCH = (p[0] == "1", p[1] == "1")
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
