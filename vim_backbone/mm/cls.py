"""mmpretrain 1.x front-end: ``VimBackbone`` in ``mmpretrain.registry.MODELS``."""
from mmpretrain.registry import MODELS

from . import layer_decay  # noqa: F401  (registers VimLayerDecayOptimWrapperConstructor)
from .backbone import VimBackbone

MODELS.register_module("VimBackbone", module=VimBackbone, force=True)
