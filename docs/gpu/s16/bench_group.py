# tools/benchmark.py with the Gluon walk backward's GLUON_BWD_GROUP set from $GROUP (an A/B knob, not in the package)
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
fb.GLUON_BWD_GROUP = int(os.environ.get("GROUP", fb.GLUON_BWD_GROUP))
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
