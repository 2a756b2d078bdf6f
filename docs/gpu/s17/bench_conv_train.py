# tools/benchmark.py with the conv backward's first step chosen from the environment (an A/B knob):
# CONV_PRE=old -> the session-16 kernel (per-tile sums over tokens; its kernels file in $OLD_KERNELS) on its own grid,
# CONV_PRE=<block_e>,<block_l>,<tiles>,<warps> -> the looped kernel at that tile
import importlib.util, os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb

setting = os.environ.get("CONV_PRE", "")
if setting == "old":
    spec = importlib.util.spec_from_file_location("old_kernels", os.environ["OLD_KERNELS"])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    new_load = fb.load_fused_kernels

    class _Pre:
        def __getitem__(self, grid):
            def launch(*args, TILES, **kw):
                return old._conv_bwd_pre_kernel[grid](*args, **kw)
            return launch

    class _Shim:
        _conv_bwd_pre_kernel = _Pre()

        def __getattr__(self, name):
            return getattr(new_load(), name)

    fb.load_fused_kernels = lambda: _Shim()
    fb.CONV_BWD_PRE_TILE = (32, 64, 1, 4)  # the old grid and tile
elif setting:
    fb.CONV_BWD_PRE_TILE = tuple(int(v) for v in setting.split(","))
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
