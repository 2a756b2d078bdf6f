from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norm import autocast_dtype


def to_2tuple(x: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class PatchEmbed(nn.Module):
    """Conv patchify, overlapping when ``stride < patch_size``; any input H x W >= patch size.

    Non-overlapping patches (stride = patch size) on CUDA run as one GEMM over the flattened patches: the same
    weights (the conv's, reshaped) and the same result as the conv. On an H200, cuDNN's conv took 0.43 ms for a
    batch of 128 at 224^2 and 1.06 ms for 16 at 1024^2 under bf16 autocast (docs/RESULTS.md, session 6).
    ``gemm`` forces the choice (``None``: that rule).
    """

    def __init__(self, img_size=224, patch_size: int = 16, stride: int = 16, in_chans: int = 3, embed_dim: int = 192,
                 gemm: Optional[bool] = None):
        super().__init__()
        self.gemm = gemm
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
        use_gemm = self.gemm if self.gemm is not None else (x.is_cuda and self.patch_size == self.stride)
        if use_gemm:
            if self.patch_size != self.stride:
                raise ValueError(f"the GEMM patchify needs stride = patch size, got {self.stride} / {self.patch_size}")
            return self._gemm_patchify(x)
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid

    def _gemm_patchify(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        (ph, pw), (b, c) = self.patch_size, x.shape[:2]
        gh, gw = self.grid_for(x.shape[2], x.shape[3])
        dtype = autocast_dtype(x.device.type) or x.dtype
        # (B, C, gh ph, gw pw) -> (B, gh gw, C ph pw), the order of the conv weight's (C, ph, pw) axes, laid out
        # in the GEMM's dtype by one copy that also casts (H200, 64 images of 1024^2 to bf16: 690 us, against
        # 929 us for a cast, then the copy)
        patches = torch.empty(b, gh, gw, c, ph, pw, device=x.device, dtype=dtype)
        patches.copy_(x[:, :, :gh * ph, :gw * pw].reshape(b, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5))
        patches = patches.view(b, gh * gw, c * ph * pw)
        return F.linear(patches, self.proj.weight.reshape(self.proj.out_channels, -1), self.proj.bias), (gh, gw)
