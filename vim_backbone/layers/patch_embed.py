from typing import Tuple, Union

import torch
import torch.nn as nn


def to_2tuple(x: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class PatchEmbed(nn.Module):
    """Conv patchify, overlapping when ``stride < patch_size``; any input H x W >= patch size."""

    def __init__(self, img_size=224, patch_size: int = 16, stride: int = 16, in_chans: int = 3, embed_dim: int = 192):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        self.stride = to_2tuple(stride)
        self.in_chans = in_chans
        self.grid_size = self.grid_for(*self.img_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.stride)

    def grid_for(self, height: int, width: int) -> Tuple[int, int]:
        return ((height - self.patch_size[0]) // self.stride[0] + 1,
                (width - self.patch_size[1]) // self.stride[1] + 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> tokens (B, M, D) and the grid (gh, gw)."""
        if x.dim() != 4:
            raise ValueError(f"expected an image batch (B, C, H, W), got a {x.dim()}-D tensor of shape "
                             f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} input channels, got {x.shape[1]} (input shape "
                             f"{tuple(x.shape)}); build the model with in_chans={x.shape[1]} or convert the images")
        if x.shape[2] < self.patch_size[0] or x.shape[3] < self.patch_size[1]:
            raise ValueError(f"image {x.shape[2]}x{x.shape[3]} is smaller than one patch "
                             f"{self.patch_size[0]}x{self.patch_size[1]}; resize or pad it")
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid
