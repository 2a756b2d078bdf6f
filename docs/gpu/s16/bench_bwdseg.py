# tools/benchmark.py with the walk backward cut into $BWDSEG segments where the sequence allows (an A/B knob, not in
# the package): the default cut is default_segments(programs, L, BWD_SEGMENT_TARGET_PROGRAMS), at most MAX_SEGMENTS
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from vim_backbone.ops import fused_bimamba as fb
real = fb.default_segments
want = int(os.environ.get("BWDSEG", 0))


def patched(programs, length, target=None):
    if want and target == fb.BWD_SEGMENT_TARGET_PROGRAMS:
        return max(1, min(want, length // fb.SEGMENT_MIN_TOKENS))
    return real(programs, length, target)


fb.default_segments = patched
sys.argv = ["tools/benchmark.py", *sys.argv[1:]]
runpy.run_path("tools/benchmark.py", run_name="__main__")
