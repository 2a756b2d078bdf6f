import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ViTDet / ConvNeXt style)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


# registered in the root registry so mmcv's build_norm_layer finds it from mmdet/mmseg/mmpretrain scopes
if "LN2d" not in MODELS.module_dict:
    MODELS.register_module("LN2d", module=LayerNorm2d)


def build_norm(norm_cfg: dict, channels: int) -> nn.Module:
    from mmcv.cnn import build_norm_layer
    return build_norm_layer(norm_cfg, channels)[1]
