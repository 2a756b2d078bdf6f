import pytest
import torch

from vim_backbone.layers import insert_middle, resize_pos_embed, split_pos_embed


def _mid_cls_pos(gh, gw, dim=4):
    """A pos_embed whose grid values encode (row, col) and whose cls slot (at M // 2) is a marker."""
    rows = torch.arange(gh, dtype=torch.float32)[:, None].expand(gh, gw)
    cols = torch.arange(gw, dtype=torch.float32)[None, :].expand(gh, gw)
    grid = torch.stack([rows, cols] + [rows * 0] * (dim - 2), -1).reshape(1, gh * gw, dim)
    cls = torch.full((1, 1, dim), 777.0)
    return insert_middle(grid, cls), grid


def test_split_finds_cls_in_the_middle():
    pe, grid = _mid_cls_pos(14, 14)
    g, cls = split_pos_embed(pe, 1)
    assert pe[0, 98, 0] == 777.0 and torch.equal(g, grid) and torch.all(cls == 777.0)


def test_identity_resize_is_exact():
    pe, _ = _mid_cls_pos(14, 14)
    assert torch.equal(resize_pos_embed(pe, (14, 14)), pe)


def test_square_to_nonsquare_and_back():
    pe, _ = _mid_cls_pos(14, 14)
    wide = resize_pos_embed(pe, (10, 20), (14, 14))
    assert wide.shape == (1, 201, 4)
    assert wide[0, 200 // 2, 0] == 777.0  # cls slot is in the middle of the new sequence
    grid, _ = split_pos_embed(wide, 1)
    grid = grid.reshape(10, 20, 4)
    assert torch.all(grid[1:, :, 0] >= grid[:-1, :, 0] - 1e-4)  # rows increase down
    assert torch.all(grid[:, 1:, 1] >= grid[:, :-1, 1] - 1e-4)  # cols increase right
    back = resize_pos_embed(wide, (14, 14), (10, 20))
    assert back.shape == pe.shape and back[0, 98, 0] == 777.0
    # a smooth (linear) field survives the round trip closely
    assert (back - pe).abs().max() < 0.6


def test_stride16_to_stride8_grid():
    pe, _ = _mid_cls_pos(14, 14, dim=8)
    pe8 = resize_pos_embed(pe, (27, 27), (14, 14))
    assert pe8.shape == (1, 730, 8) and pe8[0, 729 // 2, 0] == 777.0


def test_drop_cls_and_no_cls_input():
    pe, grid = _mid_cls_pos(6, 6)
    no_cls = resize_pos_embed(pe, (6, 6), keep_cls=False)
    assert torch.equal(no_cls, grid)
    assert resize_pos_embed(grid, (3, 4), (6, 6), num_cls=0).shape == (1, 12, 4)
    with pytest.raises(ValueError, match="keep_cls=True needs"):
        resize_pos_embed(grid, (3, 4), num_cls=0, keep_cls=True)


def test_bad_grid_errors():
    pe, _ = _mid_cls_pos(4, 6)
    with pytest.raises(ValueError, match="not a square; pass old_grid"):
        resize_pos_embed(pe, (5, 5))
    with pytest.raises(ValueError, match="has 25 tokens but pos_embed has 24"):
        resize_pos_embed(pe, (5, 5), (5, 5))
