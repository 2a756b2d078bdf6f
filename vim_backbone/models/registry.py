"""Named Vim variants: ``create_model(name, checkpoint=None, **kwargs)`` and ``list_models()``."""
from typing import Callable, Dict, List, Optional

from .vision_mamba import VisionMamba, load_pretrained

# arch name -> essential sizes (also used by the OpenMMLab wrappers' ``arch`` argument)
ARCH_SETTINGS: Dict[str, dict] = {
    "tiny": dict(embed_dim=192, depth=24),
    "small": dict(embed_dim=384, depth=24),
    "base": dict(embed_dim=768, depth=24),
}

_MODEL_CFGS: Dict[str, dict] = {
    "vim_tiny_patch16_224": dict(arch="tiny", patch_size=16, stride=16),
    "vim_tiny_patch16_stride8_224": dict(arch="tiny", patch_size=16, stride=8),
    "vim_small_patch16_224": dict(arch="small", patch_size=16, stride=16),
    "vim_small_patch16_stride8_224": dict(arch="small", patch_size=16, stride=8),
    "vim_base_patch16_224": dict(arch="base", patch_size=16, stride=16),
}


def model_kwargs(name: str) -> dict:
    """Constructor kwargs of a named variant."""
    if name not in _MODEL_CFGS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    cfg = dict(_MODEL_CFGS[name])
    return dict(ARCH_SETTINGS[cfg.pop("arch")], img_size=224, **cfg)


def list_models() -> List[str]:
    return sorted(_MODEL_CFGS)


def create_model(name: str, checkpoint: Optional[str] = None, **kwargs) -> VisionMamba:
    """Build a named Vim variant; ``checkpoint`` loads an official (or converted) weight file strictly.

    Keyword arguments override the variant's settings (e.g. ``img_size=(512, 768)``, ``num_classes=0``,
    ``class_token=False``, ``drop_path_rate=0.1``, ``scan_backend="reference"``).
    """
    model = VisionMamba(**{**model_kwargs(name), **kwargs})
    if checkpoint is not None:
        load_pretrained(model, checkpoint)
    return model
