"""tools/activation_memory.py: the bytes a training forward keeps for its backward, per image."""
import json
import os

import pytest
from tests.helpers import load_tool

from vim_backbone.ops.fused_bimamba import _xproj_columns, load_fused_kernels

pytest.importorskip("triton")


def test_scan_recompute_keeps_neither_xz_u_dt_nor_bc(tmp_path, one_thread):
    # Vim-Ti, fused backend with the kernels stubbed, bf16 autocast: with scan_recompute each of the 24 blocks keeps
    # neither in_proj's output xz ((L, 768) bf16 a image) nor its input ((L, 192) bf16; made again from the residual
    # stream the norm keeps) nor u nor dt ((2, L, 384) bf16 each) nor the fp32 copy of the B, C columns
    tool = load_tool("activation_memory")
    interpret = os.environ.get("TRITON_INTERPRET")
    kernel = load_fused_kernels()._scan_fwd_kernel
    runs = {}
    for recompute in (False, True):
        out = tmp_path / f"r{recompute}.json"
        argv = ["--img-size", "64", "--device", "cpu", "--stub-kernels", "--out", str(out)]
        runs[recompute] = tool.main(argv + ([] if recompute else ["--no-scan-recompute"]))  # on by default
        assert json.loads(out.read_text()) == runs[recompute]
    # the stubs are gone again, and the environment as it was
    assert load_fused_kernels()._scan_fwd_kernel is kernel and os.environ.get("TRITON_INTERPRET") == interpret
    tokens, e, n, r = 4 * 4 + 1, 384, 16, 12
    b_col, c_col, _ = _xproj_columns(r, n)
    per_block = tokens * (2 * e + e // 2) * 2 + 2 * (2 * tokens * e * 2) + 2 * tokens * (c_col + n - b_col) * 4
    assert runs[False]["per_image_bytes"] - runs[True]["per_image_bytes"] == 24 * per_block
    assert runs[True]["bytes_batch1"] - runs[True]["per_image_bytes"] == runs[False]["bytes_batch1"] - \
        runs[False]["per_image_bytes"] > 0  # the weights (and their bf16 copies) are kept either way


def test_reference_backend_and_deit_fp32(one_thread):
    tool = load_tool("activation_memory")
    vim = tool.main(["--img-size", "32", "--device", "cpu", "--backend", "reference", "--dtype", "fp32"])
    deit = tool.main(["--model", "deit_tiny", "--img-size", "32", "--device", "cpu", "--dtype", "fp32"])
    assert vim["per_image_bytes"] > 0 and deit["per_image_bytes"] > 0
    # DeiT-Ti at 32^2: 5 tokens; each of 12 blocks keeps at least its input, qkv and MLP hidden (fp32)
    assert deit["per_image_bytes"] >= 12 * 5 * (192 + 3 * 192 + 768) * 4
    with pytest.raises(SystemExit, match="concern Vim only"):
        tool.main(["--model", "deit_tiny", "--stub-kernels"])


def test_with_cp_keeps_the_block_inputs(one_thread):
    # gradient checkpointing keeps each block's inputs (hidden and the fp32 residual stream), not its insides
    tool = load_tool("activation_memory")
    base = ["--img-size", "64", "--device", "cpu", "--backend", "reference", "--dtype", "fp32"]
    full, cp = tool.main(base), tool.main(base + ["--with-cp"])
    assert cp["with_cp"] and cp["per_image_bytes"] < full["per_image_bytes"] / 4
