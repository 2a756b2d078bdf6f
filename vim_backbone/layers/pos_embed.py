"""Position-embedding resizing that knows where Vim keeps its class token: in the middle."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def split_pos_embed(pos_embed: torch.Tensor, num_cls: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(1, M + num_cls, D) -> grid part (1, M, D) and cls slot (1, 1, D) taken from index M // 2."""
    if num_cls == 0:
        return pos_embed, None
    if num_cls != 1:
        raise ValueError(f"num_cls must be 0 or 1, got {num_cls}")
    m = pos_embed.shape[1] - 1
    mid = m // 2
    grid = torch.cat([pos_embed[:, :mid], pos_embed[:, mid + 1:]], dim=1)
    return grid, pos_embed[:, mid:mid + 1]


def insert_middle(tokens: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Insert ``cls`` (B, 1, D) at position M // 2 of ``tokens`` (B, M, D)."""
    mid = tokens.shape[1] // 2
    return torch.cat([tokens[:, :mid], cls, tokens[:, mid:]], dim=1)


def resize_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: Tuple[int, int],
    old_grid: Optional[Tuple[int, int]] = None,
    num_cls: int = 1,
    keep_cls: Optional[bool] = None,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Resize a mid-cls position embedding to another patch grid.

    Args:
        pos_embed (Tensor): (1, M + num_cls, D); when ``num_cls`` is 1 the cls slot is at index M // 2.
        new_grid (tuple): target (gh, gw).
        old_grid (tuple, optional): source (gh, gw); a square grid is assumed when None.
        num_cls (int): 1 if ``pos_embed`` holds a cls slot, else 0.
        keep_cls (bool, optional): put the cls slot back (in the middle of the new sequence). Defaults to
            ``num_cls == 1``.
        mode (str): interpolation mode. Defaults to "bicubic".

    Returns:
        Tensor: (1, gh * gw + int(keep_cls), D).
    """
    keep_cls = bool(num_cls) if keep_cls is None else keep_cls
    if keep_cls and not num_cls:
        raise ValueError("keep_cls=True needs a pos_embed with a cls slot (num_cls=1)")
    grid, cls = split_pos_embed(pos_embed, num_cls)
    m = grid.shape[1]
    if old_grid is None:
        side = int(round(m ** 0.5))
        if side * side != m:
            raise ValueError(f"pos_embed has {m} grid tokens, not a square; pass old_grid=(gh, gw)")
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != m:
        raise ValueError(f"old_grid {tuple(old_grid)} has {old_grid[0] * old_grid[1]} tokens but pos_embed has {m}")
    new_grid = tuple(new_grid)
    if new_grid != tuple(old_grid):
        dim = grid.shape[-1]
        dtype = grid.dtype
        g = grid.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)
        g = g.to(torch.promote_types(dtype, torch.float32))
        g = F.interpolate(g, size=new_grid, mode=mode, align_corners=False)
        grid = g.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim).to(dtype)
    return insert_middle(grid, cls) if keep_cls else grid
