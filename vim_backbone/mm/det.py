"""mmdet 3.x front-end: ``VimBackbone`` and ``VimSimpleFPN`` in ``mmdet.registry.MODELS``."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from . import layer_decay  # noqa: F401  (registers VimLayerDecayOptimWrapperConstructor)
from .backbone import VimBackbone
from .norm import build_norm

MODELS.register_module("VimBackbone", module=VimBackbone, force=True)


@MODELS.register_module()
class VimSimpleFPN(BaseModule):
    """Simple feature pyramid (ViTDet) over one stride-16 map: scales (4, 2, 1, 0.5) + a max-pooled P6.

    Args:
        in_channels (int): channels of the backbone map (D).
        out_channels (int): Defaults to 256.
        scales (sequence): resampling factors of the stride-16 map. Defaults to (4, 2, 1, 0.5).
        num_outs (int): outputs; one more than ``len(scales)`` adds a stride-2 max-pool of the last level.
        norm_cfg (dict): Defaults to ``dict(type='LN2d')``.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5, norm_cfg: dict = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        norm_cfg = dict(type="LN2d") if norm_cfg is None else norm_cfg
        if num_outs < len(scales):
            raise ValueError(f"num_outs={num_outs} < number of scales {len(scales)}")
        self.num_outs = num_outs
        self.stages = nn.ModuleList()
        for scale in scales:
            dim = in_channels
            if scale == 4.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2), build_norm(norm_cfg, dim // 2), nn.GELU(),
                          nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2)]
                dim //= 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2)]
                dim //= 2
            elif scale == 1.0:
                layers = []
            elif scale == 0.5:
                layers = [nn.MaxPool2d(2, 2)]
            else:
                raise ValueError(f"scale {scale} not in (4, 2, 1, 0.5)")
            layers += [nn.Conv2d(dim, out_channels, 1, bias=False), build_norm(norm_cfg, out_channels),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                       build_norm(norm_cfg, out_channels)]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != 1:
            raise ValueError(f"VimSimpleFPN takes one backbone map (out_indices=[-1]), got {len(inputs)}")
        outs: List[torch.Tensor] = [stage(inputs[0]) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(nn.functional.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
