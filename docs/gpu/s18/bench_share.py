# tools/benchmark.py with A/B knobs: GLUON_FILE=<path> loads the Gluon kernels from that file (a copy of
# vim_backbone/ops/fused_bimamba_gluon.py from another commit) instead of the package's; CHAINS=<k> sets
# GLUON_BWD_SUM_CHAINS (the walk backward's sums over the states as k chains; 0: gl.sum); FCHAINS=<k> sets
# GLUON_FWD_SUM_CHAINS (the output pass's sum); GROUP=<g> GLUON_BWD_GROUP; MAXREG=<r> GLUON_BWD_MAX_REGISTERS (0: None);
# SPLIT=<s> GLUON_BWD_SPLIT (session 19); CONV_TILE=<e,l,tiles,warps> CONV_BWD_ONE_PASS_TILE (session 19, the one-pass
# conv backward of commit b284567, docs/gpu/s19/conv_one_pass.diff; not in the package); CONV_X_TILE=<e,l,warps>
# CONV_BWD_BLOCK_E, CONV_BWD_BLOCK_L, CONV_BWD_NUM_WARPS (session 19)
import importlib.util, os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
if os.environ.get("GLUON_FILE"):
    spec = importlib.util.spec_from_file_location("gluon_variant", os.environ["GLUON_FILE"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fb.load_gluon_kernels = lambda: module
if os.environ.get("CHAINS"):
    fb.GLUON_BWD_SUM_CHAINS = int(os.environ["CHAINS"])
if os.environ.get("FCHAINS"):
    fb.GLUON_FWD_SUM_CHAINS = int(os.environ["FCHAINS"])
if os.environ.get("GROUP"):
    fb.GLUON_BWD_GROUP = int(os.environ["GROUP"])
if os.environ.get("MAXREG"):
    fb.GLUON_BWD_MAX_REGISTERS = int(os.environ["MAXREG"]) or None
if os.environ.get("SPLIT"):
    fb.GLUON_BWD_SPLIT = int(os.environ["SPLIT"])
if os.environ.get("CONV_TILE"):
    fb.CONV_BWD_ONE_PASS_TILE = tuple(int(v) for v in os.environ["CONV_TILE"].split(","))
if os.environ.get("CONV_X_TILE"):
    fb.CONV_BWD_BLOCK_E, fb.CONV_BWD_BLOCK_L, fb.CONV_BWD_NUM_WARPS = (int(v) for v in os.environ["CONV_X_TILE"].split(","))
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
