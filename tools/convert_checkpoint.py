"""Convert a Vim weight file (official release, core, or OpenMMLab) into a ready file for one framework.

    python tools/convert_checkpoint.py SRC DST --to mmpretrain|mmdet|mmseg|core
        [--img-size 224 [W]] [--stride 16|8] [--keep-cls-token | --drop-cls-token] [--trust-checkpoint]

Targets:
    core        ``{"model": state_dict}`` in the release layout (``vim_backbone.create_model(..., checkpoint=)``,
                timm's ``pretrained_cfg_overlay=dict(file=...)``)
    mmpretrain  ``{"state_dict": {backbone.*, head.fc.*}, "meta": ...}`` for ``ImageClassifier`` configs
    mmdet       ``{"state_dict": {backbone.*}, "meta": ...}``; no class token, no head (the dense recipe)
    mmseg       same as mmdet

The architecture (D, depth, d_state, ...) is read from the weights. ``pos_embed`` is resized to the grid
of ``--img-size`` / ``--stride`` (class-token slot at M // 2 kept aside, or dropped for mmdet/mmseg).
The converted dict is then loaded strictly into a model built for the target; any missing or
unexpected key is an error that names them, and nothing is written.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vim_backbone.checkpoint import load_weights_file, unwrap_state_dict  # noqa: E402
from vim_backbone.models import VisionMamba, checkpoint_filter_fn, mm_to_release_keys  # noqa: E402

TARGETS = ("mmpretrain", "mmdet", "mmseg", "core")
DENSE_TARGETS = ("mmdet", "mmseg")


def infer_arch(sd: Dict[str, torch.Tensor]) -> dict:
    """VisionMamba size arguments read from a release-layout state dict."""
    if "patch_embed.proj.weight" not in sd or "layers.0.mixer.in_proj.weight" not in sd:
        raise ValueError("not a Vim state dict: needs patch_embed.proj.weight and layers.0.mixer.in_proj.weight "
                         f"(found e.g. {sorted(sd)[:5]})")
    proj = sd["patch_embed.proj.weight"]  # (D, C, p, p)
    embed_dim = proj.shape[0]
    d_inner = sd["layers.0.mixer.in_proj.weight"].shape[0] // 2
    return dict(
        embed_dim=embed_dim,
        depth=len({k.split(".")[1] for k in sd if k.startswith("layers.")}),
        in_chans=proj.shape[1],
        patch_size=proj.shape[-1],
        d_state=sd["layers.0.mixer.A_log"].shape[1],
        expand=d_inner // embed_dim,
        d_conv=sd["layers.0.mixer.conv1d.weight"].shape[-1],
        dt_rank=sd["layers.0.mixer.dt_proj.weight"].shape[1],
    )


def infer_stride(sd: Dict[str, torch.Tensor], patch_size: int, img_size: int = 224) -> int:
    """Stride the source was trained with, assuming it was stored for ``img_size`` (16, or 8 for the "+" files)."""
    if "pos_embed" not in sd:
        return patch_size
    tokens = sd["pos_embed"].shape[1] - (1 if "cls_token" in sd else 0)
    for stride in (patch_size, patch_size // 2):
        if stride > 0 and ((img_size - patch_size) // stride + 1) ** 2 == tokens:
            return stride
    return patch_size


def convert(raw: dict, to: str, img_size=None, stride: Optional[int] = None,
            keep_cls_token: Optional[bool] = None) -> Dict[str, object]:
    """Return the object to save for target ``to`` and a report dict (``report`` key)."""
    if to not in TARGETS:
        raise ValueError(f"--to {to!r} not in {TARGETS}")
    src = mm_to_release_keys(unwrap_state_dict(raw))
    arch = infer_arch(src)
    img_size = 224 if img_size is None else img_size
    src_stride = infer_stride(src, arch["patch_size"])
    stride = src_stride if stride is None else stride
    if keep_cls_token is None:
        keep_cls_token = to not in DENSE_TARGETS
    if keep_cls_token and "cls_token" not in src:
        raise ValueError("--keep-cls-token: the source has no cls_token")
    has_head = "head.weight" in src and to not in DENSE_TARGETS
    if to == "mmpretrain" and not has_head:
        raise ValueError("the source has no classification head (head.weight); an mmpretrain ImageClassifier "
                         "needs one. Convert with --to mmdet/mmseg/core instead.")
    if to == "mmpretrain" and not keep_cls_token:
        raise ValueError("mmpretrain classifiers read the middle class token; drop --drop-cls-token")
    num_classes = src["head.weight"].shape[0] if has_head else 0
    model = VisionMamba(img_size=img_size, stride=stride, num_classes=num_classes, class_token=keep_cls_token,
                        scan_backend="reference", **arch)
    converted = checkpoint_filter_fn(src, model)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise ValueError(f"converted weights do not fit the {to} model strictly: missing keys {list(missing)}, "
                         f"unexpected keys {list(unexpected)}")
    converted = {k: v.contiguous() for k, v in converted.items()}
    report = dict(arch=arch, img_size=img_size, stride=stride, source_stride=src_stride,
                  class_token=keep_cls_token, num_classes=num_classes, num_keys=len(converted),
                  pos_embed=(tuple(src["pos_embed"].shape), tuple(converted["pos_embed"].shape)))
    if to == "core":
        return dict(model=converted), report
    from vim_backbone.mm.checkpoint_io import to_mm_layout  # needs mmengine; only for mm targets
    meta = dict(converted_by="tools/convert_checkpoint.py", target=to,
                vim=dict(img_size=img_size, stride=stride, with_cls_token=keep_cls_token, **arch))
    return dict(state_dict=to_mm_layout(converted), meta=meta), report


def _load(path: str, trust: bool) -> dict:
    try:
        return load_weights_file(path)
    except ValueError:
        if not trust:
            raise
        return torch.load(path, map_location="cpu", weights_only=False)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Convert a Vim checkpoint for mmpretrain / mmdet / mmseg / core")
    parser.add_argument("src", help="official .pth, core file, or OpenMMLab checkpoint")
    parser.add_argument("dst", help="output file")
    parser.add_argument("--to", required=True, choices=TARGETS)
    parser.add_argument("--img-size", type=int, nargs="+", help="H [W] the pos_embed is stored for (default 224)")
    parser.add_argument("--stride", type=int, help="patch stride of the target (default: the source's)")
    cls = parser.add_mutually_exclusive_group()
    cls.add_argument("--keep-cls-token", dest="keep_cls_token", action="store_true", default=None,
                     help="keep the middle class token (default for mmpretrain/core)")
    cls.add_argument("--drop-cls-token", dest="keep_cls_token", action="store_false",
                     help="drop it and its pos_embed slot (default for mmdet/mmseg)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of SRC (only for files you wrote)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    img_size = None
    if args.img_size:
        if len(args.img_size) > 2:
            raise SystemExit(f"--img-size takes H or H W, got {args.img_size}")
        img_size = args.img_size[0] if len(args.img_size) == 1 else tuple(args.img_size)
    try:
        obj, report = convert(_load(args.src, args.trust_checkpoint), args.to, img_size, args.stride, args.keep_cls_token)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(obj, args.dst)
    (src_pe, dst_pe) = report["pos_embed"]
    print(f"wrote {args.dst} for {args.to}: {report['num_keys']} tensors, all keys matched strictly; "
          f"D={report['arch']['embed_dim']} depth={report['arch']['depth']} stride {report['source_stride']}->"
          f"{report['stride']} img_size {report['img_size']} pos_embed {src_pe}->{dst_pe} "
          f"cls_token={'kept' if report['class_token'] else 'dropped'} num_classes={report['num_classes']}")
    return report


if __name__ == "__main__":
    main()
