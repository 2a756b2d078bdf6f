"""The fused forward compiles for sm_90 on a CPU machine, without spills, with the intended tile layout.

Run in a child process: the test session sets TRITON_INTERPRET=1 (no GPU), which turns the kernels into
interpreted functions that cannot be compiled.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, load_tool


def _have_ptxas() -> bool:
    try:
        tool = load_tool("fused_sass_stats")
        return os.path.exists(tool._tool("ptxas")) and os.path.exists(tool._tool("nvdisasm"))
    except ImportError:
        return False


pytestmark = pytest.mark.skipif(not _have_ptxas(), reason="Triton's bundled ptxas / nvdisasm not found")


def _stats(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = tmp_path / "rows.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "fused_sass_stats.py"), *args, "--json", str(out)],
                   check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)
    return json.loads(out.read_text())


def test_thread_per_channel_tile_has_no_shuffles_barriers_or_spills(tmp_path):
    # block_e 32 on one warp: each lane owns one channel and its N states, so the sum over N needs no
    # lane shuffle and nothing goes through shared memory
    (row,) = _stats(tmp_path, "--configs", "32:1")
    assert row["spill_bytes"] == 0
    assert row["SHFL"] == 0 and row["BAR"] == 0
    assert "threadsPerWarp = [1, 32]" in row["layout"]
    assert row["MUFU"] > 0 and row["LDG"] > 0
    # the token loop runs four steps; each takes one MUFU per state (exp2 of dt A) plus four per channel
    # (softplus: exp2, log2; gate: exp2, rcp), i.e. every approximate function is one instruction
    assert row["loop_MUFU"] == 4 * (16 + 4)
    assert row["loop_MUFU"] < row["loop_instructions"] < row["instructions"]


def test_training_variant_compiles_without_spills(tmp_path):
    (row,) = _stats(tmp_path, "--configs", "8:1", "--store-states")
    assert row["spill_bytes"] == 0 and row["STG"] > 4  # y stores plus the chunk-state stores
