# tools/benchmark.py with the Gluon walk backward's register cap and group set from the environment (A/B knobs
# over the package's constants): MAXREG=<n> (0: the compiler's choice) -> GLUON_BWD_MAX_REGISTERS, GROUP=2|4
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
fb.GLUON_BWD_MAX_REGISTERS = int(os.environ.get("MAXREG", 0)) or None
fb.GLUON_BWD_GROUP = int(os.environ.get("GROUP", fb.GLUON_BWD_GROUP))
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
