"""Vim variants in timm's own model registry.

``import vim_backbone`` never imports timm; importing this module registers the variants::

    import timm
    import vim_backbone.timm_models  # noqa: F401  (registers vim_* in timm)

    model = timm.create_model("vim_tiny_patch16_224", pretrained=True)            # hustvl/Vim-tiny-midclstok
    model = timm.create_model("vim_tiny_patch16_224", pretrained=True,
                              pretrained_cfg_overlay=dict(file="vim_t_midclstok_76p1acc.pth"))
    feats = timm.create_model("vim_small_patch16_224", features_only=True, out_indices=(5, 11, 17, 23))

Registered: ``vim_tiny_patch16_224``, ``vim_tiny_patch16_stride8_224``, ``vim_small_patch16_224``,
``vim_small_patch16_stride8_224``, ``vim_base_patch16_224`` (the names of ``vim_backbone.list_models()``),
each with an ``.in1k`` pretrained cfg pointing at the released Hugging Face file.

Weights load through :func:`vim_backbone.models.checkpoint_filter_fn`, so an official release file works
unchanged (``{"model": ..., "model_ema": ..., "args": Namespace}``), at any ``img_size`` / ``stride``
(pos-embed resized with the class-token slot at M // 2), and with another ``num_classes`` (head dropped).
Files load with ``custom_load=True`` (also when ``pretrained_cfg_overlay`` names a file; pass
``custom_load=False`` in the overlay to opt out), i.e. through ``VisionMamba.load_pretrained``: timm's generic
file reader would take the ``model_ema`` weights of a release file, while the core
(``vim_backbone.create_model(name, checkpoint=...)``) and the OpenMMLab tools read ``model``.

``features_only=True`` returns per-block NCHW maps through ``forward_intermediates`` (timm's
``FeatureGetterNet``); ``out_indices`` defaults to the last 3 blocks, as for timm's ViT.
"""
from typing import Any, Dict

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .models import VisionMamba, checkpoint_filter_fn, model_kwargs

__all__ = ["default_cfgs"]


def _cfg(hf_hub_id: str, hf_hub_filename: str, top1: float, **kwargs) -> Dict[str, Any]:
    return dict(
        hf_hub_id=hf_hub_id,
        hf_hub_filename=hf_hub_filename,
        custom_load=True,
        num_classes=1000,
        input_size=(3, 224, 224),
        pool_size=None,
        crop_pct=0.875,
        interpolation="bicubic",
        fixed_input_size=False,  # any H x W: pos_embed is resized for the actual grid
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        first_conv="patch_embed.proj",
        classifier="head",
        license="apache-2.0",
        paper_ids="arXiv:2401.09417",
        paper_name="Vision Mamba: Efficient Visual Representation Learning with Bidirectional State Space Model",
        origin_url="https://github.com/hustvl/Vim",
        notes=(f"ImageNet-1k top-1 {top1} (released)",),
        **kwargs,
    )


default_cfgs = generate_default_cfgs({
    "vim_tiny_patch16_224.in1k": _cfg("hustvl/Vim-tiny-midclstok", "vim_t_midclstok_76p1acc.pth", 76.1),
    "vim_tiny_patch16_stride8_224.in1k": _cfg("hustvl/Vim-tiny-midclstok", "vim_t_midclstok_ft_78p3acc.pth", 78.3),
    "vim_small_patch16_224.in1k": _cfg("hustvl/Vim-small-midclstok", "vim_s_midclstok_80p5acc.pth", 80.5),
    "vim_small_patch16_stride8_224.in1k": _cfg("hustvl/Vim-small-midclstok", "vim_s_midclstok_ft_81p6acc.pth", 81.6),
    "vim_base_patch16_224.in1k": _cfg("hustvl/Vim-base-midclstok", "vim_b_midclstok_81p9acc.pth", 81.9),
})


def _create_vim(variant: str, pretrained: bool = False, **kwargs) -> VisionMamba:
    out_indices = kwargs.pop("out_indices", 3)
    # timm resets custom_load to False when the overlay names a file / url; an official file then goes
    # through timm's generic reader, which takes "model_ema" over "model". Keep our reader unless told.
    overlay = dict(kwargs.pop("pretrained_cfg_overlay", None) or {})
    overlay.setdefault("custom_load", True)
    return build_model_with_cfg(
        VisionMamba,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        pretrained_cfg_overlay=overlay,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **{**model_kwargs(variant), **kwargs},
    )


@register_model
def vim_tiny_patch16_224(pretrained: bool = False, **kwargs) -> VisionMamba:
    """Vim-Ti: D 192, depth 24, patch 16 / stride 16."""
    return _create_vim("vim_tiny_patch16_224", pretrained, **kwargs)


@register_model
def vim_tiny_patch16_stride8_224(pretrained: bool = False, **kwargs) -> VisionMamba:
    """Vim-Ti+: Vim-Ti fine-tuned with patch stride 8 (27 x 27 grid at 224)."""
    return _create_vim("vim_tiny_patch16_stride8_224", pretrained, **kwargs)


@register_model
def vim_small_patch16_224(pretrained: bool = False, **kwargs) -> VisionMamba:
    """Vim-S: D 384, depth 24, patch 16 / stride 16."""
    return _create_vim("vim_small_patch16_224", pretrained, **kwargs)


@register_model
def vim_small_patch16_stride8_224(pretrained: bool = False, **kwargs) -> VisionMamba:
    """Vim-S+: Vim-S fine-tuned with patch stride 8."""
    return _create_vim("vim_small_patch16_stride8_224", pretrained, **kwargs)


@register_model
def vim_base_patch16_224(pretrained: bool = False, **kwargs) -> VisionMamba:
    """Vim-B: D 768, depth 24, patch 16 / stride 16."""
    return _create_vim("vim_base_patch16_224", pretrained, **kwargs)
