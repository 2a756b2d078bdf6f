"""Vision Mamba (Vim) backbone: the released model in plain PyTorch, with OpenMMLab and timm front-ends.

The core (this package minus ``vim_backbone.mm``) imports only torch.
"""
from .checkpoint import load_weights_file
from .models import VisionMamba, checkpoint_filter_fn, create_model, list_models, load_pretrained
from .version import __version__

__all__ = ["VisionMamba", "checkpoint_filter_fn", "create_model", "list_models", "load_pretrained",
           "load_weights_file", "__version__"]
