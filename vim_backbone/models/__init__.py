from .cuda_graph import GraphedForward
from .registry import ARCH_SETTINGS, create_model, list_models, model_kwargs
from .vision_mamba import VisionMamba, checkpoint_filter_fn, load_pretrained, mm_to_release_keys, take_indices
