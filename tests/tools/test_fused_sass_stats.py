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
    # the token loop runs four steps; each takes one MUFU per state (exp2 of dt A) plus two per channel
    # (softplus: exp2, log2; the gate is applied after the walk), i.e. every approximate function is one
    # instruction
    assert row["loop_MUFU"] == 4 * (16 + 2)
    assert row["loop_MUFU"] < row["loop_instructions"] < row["instructions"]


def _gluon_compiles() -> bool:
    try:
        from triton.experimental.gluon._runtime import GluonASTSource  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _gluon_compiles(), reason="this Triton has no Gluon")
@pytest.mark.parametrize("state_pass", [False, True])
def test_gluon_walk_is_a_channel_a_lane(tmp_path, state_pass):
    # the Gluon walk's token steps touch no other lane (no shuffle) and no shared memory but the staged
    # operands (two barriers a group of tokens), the layout is the stated one, and the loop is shorter than
    # the Triton walk's for the same tokens
    flags = ["--state-pass"] if state_pass else []
    (gluon,) = _stats(tmp_path, "--configs", "32:1", "--kernel", "gluon", *flags)
    (triton_row,) = _stats(tmp_path, "--configs", "32:1", *flags)
    assert gluon["layout"].startswith("sizePerThread = [16, 1], threadsPerWarp = [1, 32]")
    assert gluon["spill_bytes"] == 0 and gluon["registers"] <= 128
    assert gluon["SHFL"] == 0 and gluon["loop_BAR"] == 2
    stage = 8  # token steps a loop iteration (GLUON_STATE_PASS_STAGE, GLUON_OUTPUT_PASS_STAGE)
    assert gluon["loop_MUFU"] == stage * (16 + 1)  # softplus's log is a polynomial (GLUON_SOFTPLUS_POLY)
    assert gluon["loop_instructions"] / stage < triton_row["loop_instructions"] / 4


def test_training_variant_compiles_without_spills(tmp_path):
    (row,) = _stats(tmp_path, "--configs", "8:1", "--store-states")
    assert row["spill_bytes"] == 0 and row["STG"] > 4  # y stores plus the chunk-state stores


@pytest.mark.skipif(not _gluon_compiles(), reason="this Triton has no Gluon")
@pytest.mark.parametrize("split", [1, 2])
def test_gluon_walk_backward_takes_each_exp_once(tmp_path, split):
    # a chunk's loop holds the first walk's group of tokens (a state exp each, softplus) and one group's second walk
    # and backward, whose token steps take their decays and steps from that second walk: a state exp each, softplus
    # with its derivative (exp2, log2 unless a polynomial, rcp) and the gate's sigmoid (exp2, rcp), nothing twice.
    # With a channel's states over two lanes (GLUON_BWD_SPLIT) each lane takes half the state exps, and the
    # per-channel ones as before.
    from vim_backbone.ops import fused_bimamba as fb
    (row,) = _stats(tmp_path, "--configs", f"{32 // split}:1", "--kernel", "gluon-bwd")
    assert row["layout"].startswith(f"sizePerThread = [{16 // split}, 1], threadsPerWarp = [{split}, {32 // split}]")
    log = 0 if fb.GLUON_BWD_SOFTPLUS_POLY else 1
    group, s = fb.GLUON_BWD_GROUP, 16 // split
    assert row["loop_MUFU"] == group * (s + 1 + log) + group * (s + 4 + log)
    assert row["registers"] <= 255 and row["SHFL"] > 0  # the dB / dC sums' last step crosses two lanes
