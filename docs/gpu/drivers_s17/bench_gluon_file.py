# tools/benchmark.py with the Gluon kernels loaded from the file $GLUON_FILE (an A/B knob: a patched copy of
# vim_backbone/ops/fused_bimamba_gluon.py) instead of the package's module; unset: the package's
import importlib.util, os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
path = os.environ.get("GLUON_FILE")
if path:
    spec = importlib.util.spec_from_file_location("gluon_variant", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fb.load_gluon_kernels = lambda: module
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
