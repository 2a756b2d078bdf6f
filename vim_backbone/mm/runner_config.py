"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict


def load_config(path: str, launcher: str = "none", cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read ``path``, apply ``--cfg-options`` and ``--launcher``, and settle the work dir.

    The work dir is ``work_dir`` if given, else the config's own, else ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(path))[0])
    return cfg


def shrink_model_cfg(model: ConfigDict, task: str, arch: dict, channels: int) -> None:
    """Shrink a det/seg model config in place for smoke runs: backbone ``arch``, necks and heads ``channels``
    wide, fewer sampled boxes; the structure (taps, heads, stages) is kept.

    Args:
        model (ConfigDict): ``cfg.model`` with a ``VimBackbone``.
        task (str): "det" or "seg".
        arch (dict): backbone arch, e.g. ``dict(embed_dim=32, depth=4, d_state=4)``.
        channels (int): neck / head width.
    """
    if task not in ("det", "seg"):
        raise ValueError(f"task {task!r} not in ('det', 'seg')")
    dim, ch = arch["embed_dim"], channels
    bb = model.backbone
    bb.arch = dict(arch)
    bb.out_indices = list(range(arch["depth"]))[-len(bb.get("out_indices", [-1])):]
    if task == "seg":
        for key in ("decode_head", "auxiliary_head"):
            head = model.get(key)
            if head is not None:
                head.in_channels = [dim] * len(head.in_channels) if isinstance(head.in_channels, (list, tuple)) else dim
                head.channels = ch // 2 if key == "auxiliary_head" else ch
        return
    neck = model.neck
    neck.in_channels = dim if neck.type == "VimSimpleFPN" else [dim] * len(neck.in_channels)
    neck.out_channels = ch
    if "rpn_head" in model:
        model.rpn_head.update(in_channels=ch, feat_channels=ch)
    if "bbox_head" in model:  # single-stage
        model.bbox_head.update(in_channels=ch, feat_channels=ch)
    roi = model.get("roi_head")
    if roi is not None:
        roi.bbox_roi_extractor.out_channels = ch
        for head in roi.bbox_head if isinstance(roi.bbox_head, list) else [roi.bbox_head]:
            head.update(in_channels=ch, fc_out_channels=2 * ch)
            if "conv_out_channels" in head:
                head.conv_out_channels = ch
        if "mask_head" in roi:
            roi.mask_roi_extractor.out_channels = ch
            roi.mask_head.update(in_channels=ch, conv_out_channels=ch)
    train_cfg = model.get("train_cfg") or {}
    if "rpn" in train_cfg:
        train_cfg.rpn.sampler.num = 64
        train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        for stage in train_cfg.rcnn if isinstance(train_cfg.rcnn, list) else [train_cfg.rcnn]:
            stage.sampler.num = 32
