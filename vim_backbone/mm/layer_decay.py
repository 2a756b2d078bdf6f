"""Layer-wise learning-rate decay for Vim, registered as ``VimLayerDecayOptimWrapperConstructor``.

The official segmentation code matched ``blocks.`` while Vim names its blocks ``layers.``, so its decay
was silently off. Here each backbone parameter gets its layer from ``backbone.get_layer_depth`` and the
constructor refuses to run when no parameter lands in a block layer.
"""
from typing import List

import torch.nn as nn
from mmengine.dist import get_dist_info
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
class VimLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """AdamW groups with ``lr * decay_rate ** (num_layers - layer_id - 1)``, no weight decay where it hurts.

    ``paramwise_cfg`` keys: ``layer_decay_rate`` (float, required), ``backbone_prefix`` (default
    "backbone."). Parameters take no weight decay if they are 1-D, biases, or named by the backbone's
    ``no_weight_decay()`` (pos_embed, cls_token, A_log, A_b_log, D, D_b). Layer ids: embeddings 0, block i
    i + 1, everything else (final norm, neck, heads) the top layer with the full lr.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = "", **kwargs) -> None:
        decay_rate = self.paramwise_cfg.get("layer_decay_rate")
        if decay_rate is None:
            raise ValueError("paramwise_cfg needs 'layer_decay_rate' for VimLayerDecayOptimWrapperConstructor")
        bb_prefix = self.paramwise_cfg.get("backbone_prefix", "backbone.")
        model = module.module if hasattr(module, "module") else module
        backbone = getattr(model, bb_prefix.rstrip(".").split(".")[-1], None) if bb_prefix else model
        if backbone is None or not hasattr(backbone, "get_layer_depth"):
            raise ValueError(f"model has no Vim backbone at {bb_prefix!r} (needs get_layer_depth)")
        no_wd = {bb_prefix + n for n in backbone.no_weight_decay()}
        groups = {}
        in_blocks = 0
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = backbone.get_layer_depth(name, bb_prefix)
            in_blocks += 0 < layer_id < num_layers - 1
            skip_wd = param.ndim <= 1 or name.endswith(".bias") or name in no_wd
            key = (layer_id, skip_wd)
            if key not in groups:
                scale = decay_rate ** (num_layers - layer_id - 1)
                groups[key] = dict(params=[], param_names=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0.0 if skip_wd else self.base_wd, layer_id=layer_id)
            groups[key]["params"].append(param)
            groups[key]["param_names"].append(name)
        if in_blocks == 0:
            raise ValueError(f"layer decay found no parameter of {bb_prefix}layers.N; check backbone_prefix")
        params.extend(groups[k] for k in sorted(groups))
        rank, _ = get_dist_info()
        if rank == 0:
            logger = MMLogger.get_current_instance()
            logger.info(f"layer decay {decay_rate}: {len(groups)} param groups, "
                        f"{sum(len(g['params']) for g in groups.values())} params")
