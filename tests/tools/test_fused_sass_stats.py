"""The fused forward compiles for sm_90 on a CPU machine, without spills, its state tile kept in registers.

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


def test_output_pass_keeps_its_state_tile_in_registers(tmp_path):
    # block_e 32 on one warp, the default: no spills, and no (N, BLOCK_E) tile goes through shared memory in
    # the token loop (A is read in the memory order that gives it the state's layout; with A channels-first
    # the Triton of torch 2.11 moved the decay tile through shared memory at every token, at 156 registers)
    (row,) = _stats(tmp_path, "--configs", "32:1")
    assert row["spill_bytes"] == 0
    assert row["loop_LDSM"] == 0
    assert row["registers"] <= 128  # four programs of one warp a scheduler or more
    assert row["MUFU"] > 0 and row["LDG"] > 0
    # the token loop runs four steps; each takes one MUFU per state (exp2 of dt A) plus four per channel
    # (softplus: exp2, log2; gate: exp2, rcp), i.e. every approximate function is one instruction
    assert row["loop_MUFU"] == 4 * (16 + 4)
    assert row["loop_MUFU"] < row["loop_instructions"] < row["instructions"]


def test_training_variant_compiles_without_spills(tmp_path):
    (row,) = _stats(tmp_path, "--configs", "8:1", "--store-states")
    assert row["spill_bytes"] == 0 and row["STG"] > 4  # y stores plus the chunk-state stores
