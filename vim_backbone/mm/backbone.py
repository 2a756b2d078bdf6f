"""The framework-neutral part of the OpenMMLab Vim backbone (mmengine only).

``VimBackbone`` *is* a :class:`VisionMamba` (so parameters are ``backbone.layers.N...`` and official
checkpoints load unchanged) plus the mmpretrain-style arguments and the multi-scale taps dense heads
need. ``vim_backbone.mm.det`` / ``.seg`` / ``.cls`` register it in their framework's registry.
"""
import copy
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

from ..models import ARCH_SETTINGS, VisionMamba, load_pretrained
from .norm import build_norm

ESSENTIAL_ARCH_KEYS = {"embed_dim", "depth"}
OUT_TYPES = ("featmap", "raw", "cls_token")
TAP_SCALES = (4.0, 2.0, 1.0, 0.5)


def resolve_arch(arch: Union[str, Dict]) -> Dict:
    if isinstance(arch, str):
        key = arch.lower()
        aliases = {"t": "tiny", "ti": "tiny", "s": "small", "b": "base"}
        key = aliases.get(key, key)
        if key not in ARCH_SETTINGS:
            raise ValueError(f"arch {arch!r} not in {sorted(ARCH_SETTINGS)} (or pass a dict with {sorted(ESSENTIAL_ARCH_KEYS)})")
        return dict(ARCH_SETTINGS[key])
    if not isinstance(arch, dict) or not ESSENTIAL_ARCH_KEYS <= set(arch):
        raise ValueError(f"custom arch must be a dict with keys {sorted(ESSENTIAL_ARCH_KEYS)}, got {arch!r}")
    return dict(arch)


class ScaleTap(nn.Sequential):
    """Resamples a stride-s map by ``scale`` (4: 2x deconv, 2: deconv, 1: identity, 0.5: max-pool)."""

    def __init__(self, dim: int, scale: float, norm_cfg: dict):
        if scale == 4.0:
            layers = [nn.ConvTranspose2d(dim, dim, 2, 2), build_norm(norm_cfg, dim), nn.GELU(),
                      nn.ConvTranspose2d(dim, dim, 2, 2)]
        elif scale == 2.0:
            layers = [nn.ConvTranspose2d(dim, dim, 2, 2)]
        elif scale == 1.0:
            layers = []
        elif scale == 0.5:
            layers = [nn.MaxPool2d(2, 2)]
        else:
            raise ValueError(f"tap scale {scale} not in {TAP_SCALES}")
        super().__init__(*layers)


class VimBackbone(VisionMamba, BaseModule):
    """Vim for OpenMMLab models.

    Args:
        arch (str | dict): "tiny" / "small" / "base" or a dict with ``embed_dim`` and ``depth`` (and any
            other :class:`VisionMamba` size argument). Defaults to "tiny".
        img_size (int | tuple): size the position embedding is kept for; any input size works.
        patch_size (int): Defaults to 16.
        stride (int): Defaults to 16 (8 for the "+" variants).
        out_indices (int | sequence): blocks whose features are returned; negatives count from the end.
            Defaults to -1.
        out_type (str): "featmap" (NCHW maps), "raw" (tokens (B, M, D), cls removed) or "cls_token"
            ((B, D), classification). Defaults to "featmap".
        tap_scales (sequence, optional): one resampling per out index (4, 2, 1, 0.5) turning stride-16
            maps into strides 4/8/16/32; None returns the maps as they are (for a simple-FPN neck).
        norm_cfg (dict): norm inside the 4x tap. Defaults to ``dict(type='LN2d')``.
        final_norm (bool): apply ``norm_f`` to the returned features. Defaults to False for featmaps
            (the residual stream, as in the paper), True otherwise.
        with_cls_token (bool): keep the middle class token (it takes part in the scan, and is removed from
            the maps). Defaults to False (the dense recipe).
        frozen_stages (int): freeze the embeddings (>= 0) and the first ``frozen_stages`` blocks. -1 = none.
        norm_eval (bool): keep BN in the taps in eval mode while training. Defaults to False.
        drop_path_rate, drop_rate, with_cp, scan_backend, scan_recompute, cuda_graph, cuda_graph_max_shapes,
        cuda_graph_train: see :class:`VisionMamba` (``scan_recompute=True``, the default: less activation memory in
            training with the fused backend; ``cuda_graph=True``: inference from CUDA graphs, e.g. for the
            fixed-size crops of sliding-window segmentation; ``cuda_graph_train=True``: training steps' forward and
            backward from CUDA graphs, for fixed-size training batches (crops, LSJ); the taps are in the graphs).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path[, prefix='backbone.'])`` loads
            an official classification file (or an mm checkpoint) unchanged; keys are reported by name.
    """

    def __init__(self, arch: Union[str, Dict] = "tiny", img_size=224, patch_size: int = 16, stride: int = 16,
                 in_channels: int = 3, out_indices: Union[int, Sequence[int]] = -1, out_type: str = "featmap",
                 tap_scales: Optional[Sequence[float]] = None, norm_cfg: Optional[dict] = None,
                 final_norm: Optional[bool] = None, with_cls_token: bool = False, frozen_stages: int = -1,
                 norm_eval: bool = False, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 with_cp: bool = False, scan_backend: Optional[str] = None, cuda_graph: bool = False,
                 cuda_graph_max_shapes: int = 4, scan_recompute: bool = True, cuda_graph_train: bool = False,
                 init_cfg: Optional[dict] = None):
        arch_cfg = resolve_arch(arch)
        if out_type not in OUT_TYPES:
            raise ValueError(f"out_type {out_type!r} not in {OUT_TYPES}")
        if out_type == "cls_token" and not with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True")
        super().__init__(img_size=img_size, patch_size=patch_size, stride=stride, in_chans=in_channels,
                         num_classes=0, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                         class_token=with_cls_token, with_cp=with_cp, scan_backend=scan_backend,
                         cuda_graph=cuda_graph, cuda_graph_max_shapes=cuda_graph_max_shapes,
                         scan_recompute=scan_recompute, cuda_graph_train=cuda_graph_train, **arch_cfg)
        self.init_cfg = copy.deepcopy(init_cfg)
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        self.out_indices = [i + self.depth if i < 0 else i for i in out_indices]
        for i in self.out_indices:
            if not 0 <= i < self.depth:
                raise ValueError(f"out_indices {list(out_indices)} out of range for depth {self.depth}")
        self.out_type = out_type
        self.final_norm = (out_type != "featmap") if final_norm is None else final_norm
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        # blocks after the last tapped one and norm_f (when features are not normalised) never see a
        # gradient: their parameters stay (official checkpoints load strictly) but are not trained, so
        # DistributedDataParallel needs no find_unused_parameters
        for m in ([] if self.final_norm else [self.norm_f]) + list(self.layers[max(self.out_indices) + 1:]):
            m.requires_grad_(False)
        norm_cfg = dict(type="LN2d") if norm_cfg is None else norm_cfg
        if tap_scales is not None:
            if out_type != "featmap" or len(tap_scales) != len(self.out_indices):
                raise ValueError(f"tap_scales {tuple(tap_scales)} needs out_type='featmap' and one scale per "
                                 f"out index {self.out_indices}")
            self.taps = nn.ModuleList(ScaleTap(self.embed_dim, float(s), norm_cfg) for s in tap_scales)
        else:
            self.taps = None
        self._freeze_stages()

    def init_weights(self) -> None:
        """Pretrained: load through :func:`load_pretrained`; otherwise the released init from ``__init__``."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            logger = MMLogger.get_current_instance()
            from ..checkpoint import load_weights_file, unwrap_state_dict
            raw = unwrap_state_dict(load_weights_file(cfg["checkpoint"]))
            prefix = cfg.get("prefix")
            if prefix:
                raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
                if not raw:
                    raise ValueError(f"no key of {cfg['checkpoint']!r} starts with prefix {prefix!r}")
            taps = {k: v for k, v in raw.items() if k.startswith("taps.")}
            core = {k: v for k, v in raw.items() if not k.startswith("taps.")}
            report = load_pretrained(self, core, strict=False)
            if self.taps is not None and taps:
                self.taps.load_state_dict({k[len("taps."):]: v for k, v in taps.items()})
            missing = [k for k in report["missing"] if not k.startswith("taps.")]
            if missing or report["unexpected"]:
                raise ValueError(f"checkpoint {cfg['checkpoint']!r} does not fit the backbone: missing {missing}, "
                                 f"unexpected {report['unexpected']}")
            logger.info(f"loaded {cfg['checkpoint']} into VimBackbone: all backbone keys matched"
                        + (" (classification head dropped)" if report["head_dropped"] else ""))
            self._is_init = True
        else:
            BaseModule.init_weights(self)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed] + list(self.layers[: self.frozen_stages])
        self.pos_embed.requires_grad = False
        if self.cls_token is not None:
            self.cls_token.requires_grad = False
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        if self.frozen_stages >= self.depth:
            self.norm_f.eval()
            for p in self.norm_f.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def _forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.out_type == "cls_token":
            return (self.forward_head(self.forward_features(x), pre_logits=True),)
        feats = self.forward_intermediates(x, self.out_indices, norm=self.final_norm,
                                           output_fmt="NCHW" if self.out_type == "featmap" else "NLC",
                                           intermediates_only=True, stop_early=True)
        if self.taps is not None:
            feats = [tap(f) for tap, f in zip(self.taps, feats)]
        return tuple(feats)
