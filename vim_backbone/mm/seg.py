"""mmseg 1.x front-end: ``VimBackbone`` in ``mmseg.registry.MODELS``."""
from mmseg.registry import MODELS

from . import layer_decay  # noqa: F401  (registers VimLayerDecayOptimWrapperConstructor)
from .backbone import VimBackbone

MODELS.register_module("VimBackbone", module=VimBackbone, force=True)
